using System.Globalization;
using Fabric.Bench.Engine;
using Fabric.Bench.Serve;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench serve`: drives a real <c>fabric-engine serve</c> over HTTP with a closed-loop load of C clients
/// (seeded prompt and output lengths) and prints throughput, time to first token, inter-token latency and expert bytes
/// fetched per output token, each beside the same figure with one client in the same run — all experts resident, and
/// a quarter resident with the rest paged from a fabric-pool child over shared memory.
/// </summary>
public sealed class ServeBenchmark : IBenchmark
{
    public string Name => "serve";

    public string Summary => "engine serve over HTTP: C clients beside 1 client, all resident and 25% resident over shm";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = new BenchOptions(Name, args, ["--model", "--clients", "--requests", "--seed", "--max-batch"]);
        if (options.Has("--help"))
        {
            Console.WriteLine("usage: fabric bench serve [--model DIR] [--clients 8] [--requests 4 (per client)] [--seed 1] [--max-batch 8]");
            return 0;
        }
        var clients = options.Int("--clients", 8, 1, 256);
        var perClient = options.Int("--requests", 4, 1, 10_000);
        var seed = options.Int("--seed", 1, 0);
        var maxBatch = options.Int("--max-batch", 8, 1, 256);
        var model = ModelCache.Resolve(options.Text("--model"), "small");
        var config = Fabric.Model.ModelConfigReader.Load(Path.Combine(model, "config.json"));
        var common = $"--max-batch {maxBatch} --max-seq-len 512 --prefill-chunk 64 --policy activation --prefetch next-layer";
        Console.WriteLine($"model      {model}");
        Console.WriteLine($"load       closed loop, prompts 16–64 tokens, outputs 16–48 tokens (seed {seed}), {perClient} requests per client");

        await RunResidencyAsync("all experts resident (local checkpoint)", $"--model \"{model}\" {common}", null);

        var tokensFile = Path.Combine(Path.GetTempPath(), $"fabric-bench-serve-tokens-{Environment.ProcessId}");
        var shm = $"/dev/shm/fabric-bench-serve-{Environment.ProcessId}";
        await File.WriteAllTextAsync(tokensFile, "bench:bench-secret\n", cancellationToken);
        try
        {
            await using var pool = await PoolChild.StartAsync(model, tokensFile, shm, cancellationToken);
            var slots = config.TotalExperts / 4;
            await RunResidencyAsync($"{slots} of {config.TotalExperts} experts resident (25%), paged from a fabric-pool over shm",
                $"--pool {pool.Endpoint("shm")} --token bench:bench-secret --slots {slots} {common}", pool);
        }
        finally
        {
            File.Delete(tokensFile);
        }
        return 0;

        async Task RunResidencyAsync(string title, string arguments, PoolChild? pool)
        {
            await using var server = await ServeChild.StartAsync(arguments, cancellationToken);
            // One short run first so that neither measured run pays for JIT compilation.
            await LoadGenerator.RunAsync(server, 1, 1, (8, 8), (4, 4), config.VocabSize, seed + 1000, cancellationToken);
            var one = await LoadGenerator.RunAsync(server, 1, perClient, (16, 64), (16, 48), config.VocabSize, seed, cancellationToken);
            var many = await LoadGenerator.RunAsync(server, clients, perClient, (16, 64), (16, 48), config.VocabSize, seed, cancellationToken);
            Console.WriteLine();
            Console.WriteLine(title + ":");
            Console.WriteLine($"{"",-28}{"1 client",12}{clients + " clients",12}{"ratio",9}");
            Row("output tokens/s", one.TokensPerSecond, many.TokensPerSecond, "0.0");
            Row("time to first p50 (ms)", 1e3 * LoadResult.Percentile(one.TimesToFirstToken, 0.5), 1e3 * LoadResult.Percentile(many.TimesToFirstToken, 0.5), "0.0");
            Row("time to first p99 (ms)", 1e3 * LoadResult.Percentile(one.TimesToFirstToken, 0.99), 1e3 * LoadResult.Percentile(many.TimesToFirstToken, 0.99), "0.0");
            Row("inter-token p50 (ms)", 1e3 * LoadResult.Percentile(one.InterTokenLatencies, 0.5), 1e3 * LoadResult.Percentile(many.InterTokenLatencies, 0.5), "0.00");
            Row("inter-token p99 (ms)", 1e3 * LoadResult.Percentile(one.InterTokenLatencies, 0.99), 1e3 * LoadResult.Percentile(many.InterTokenLatencies, 0.99), "0.00");
            Row("expert KiB / output token", one.BytesPerToken / 1024, many.BytesPerToken / 1024, "0.0");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"requests, output tokens",-28}{$"{one.Requests}, {one.OutputTokens}",12}{$"{many.Requests}, {many.OutputTokens}",12}"));
            _ = pool;
        }
    }

    private static void Row(string name, double one, double many, string format) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-28}{one.ToString(format, CultureInfo.InvariantCulture),12}{many.ToString(format, CultureInfo.InvariantCulture),12}{(one > 0 ? (many / one).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "-"),9}"));
}
