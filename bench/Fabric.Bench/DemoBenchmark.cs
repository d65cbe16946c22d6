using System.Globalization;
using Fabric.Bench.Engine;
using Fabric.Bench.Serve;

namespace Fabric.Bench;

/// <summary>
/// `./fabric demo`: the main job on one machine. Generates (or reuses) the small model with a Mixtral-like router
/// skew, starts a real fabric-pool child process on loopback and an engine worker (<c>fabric-engine serve</c>) that
/// keeps a quarter of the experts resident and pages the rest from the pool over tcp, sends several concurrent chat
/// requests and streams their text, and prints a summary per request and in aggregate beside the same requests served
/// with every expert resident.
/// </summary>
public sealed class DemoBenchmark : IBenchmark
{
    private static readonly string[] Questions =
    [
        "What is a mixture of experts?",
        "Tell me about the sea.",
        "Why is memory the bottleneck?",
        "Write a short poem about fabric.",
    ];

    public string Name => "demo";

    public string Summary => "small model, pool daemon and engine worker on loopback, concurrent chat requests with 25% of experts resident beside all-resident";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = new BenchOptions(Name, args, ["--tokens", "--requests"]);
        if (options.Has("--help"))
        {
            Console.WriteLine("usage: fabric bench demo [--tokens N (per request, default 32)] [--requests N (concurrent, default 4)]");
            return 0;
        }
        var maxTokens = options.Int("--tokens", 32);
        var count = options.Int("--requests", 4, 1, 8);
        var model = ModelCache.Ensure("small", skew: 1.0);
        var config = Fabric.Model.ModelConfigReader.Load(Path.Combine(model, "config.json"));
        var tokensFile = Path.Combine(Path.GetTempPath(), $"fabric-demo-tokens-{Environment.ProcessId}");
        await File.WriteAllTextAsync(tokensFile, "demo:demo-secret\n", cancellationToken);
        try
        {
            Console.WriteLine($"model      {model}");
            await using var pool = await PoolChild.StartAsync(model, tokensFile, null, cancellationToken);
            var endpoint = pool.Endpoint("tcp");
            Console.WriteLine($"pool       fabric-pool child process listening on {endpoint}");
            var common = $"--max-batch {count} --max-seq-len {maxTokens + 256} --policy activation --prefetch next-layer --served-model-name small";

            var resident = await ServeAsync($"--model \"{model}\" {common}", live: false);

            var slots = config.TotalExperts / 4;
            Console.WriteLine();
            Console.WriteLine($"engine     fabric-engine serve, {slots} of {config.TotalExperts} experts resident (25%), the rest paged from the pool over tcp; {count} concurrent chat requests:");
            var paged = await ServeAsync($"--pool {endpoint} --token demo:demo-secret --tokenizer \"{model}\" --slots {slots} {common}", live: true);

            Console.WriteLine();
            Console.WriteLine($"{"request",-9}{"prompt",8}{"tokens",8}{"TTFT ms (all / 25%)",24}{"tok/s (all / 25%)",22}  finish");
            for (var i = 0; i < count; i++)
            {
                var a = resident.Results[i];
                var p = paged.Results[i];
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{"#" + (i + 1),-9}{p.PromptTokens,8}{p.TokenIds.Length,8}{$"{1e3 * a.TimeToFirstToken:0} / {1e3 * p.TimeToFirstToken:0}",24}{$"{a.DecodeTokensPerSecond:0.0} / {p.DecodeTokensPerSecond:0.0}",22}  {p.FinishReason}"));
            }
            Console.WriteLine();
            Console.WriteLine($"{"aggregate",-26}{"all-resident",14}{"25% resident",14}{"ratio",8}");
            Row("output tokens/s", resident.TokensPerSecond, paged.TokensPerSecond, "0.0");
            Row("mean TTFT (ms)", 1e3 * resident.Results.Average(r => r.TimeToFirstToken), 1e3 * paged.Results.Average(r => r.TimeToFirstToken), "0.0");
            Row("expert hit rate (%)", 100 * resident.HitRate, 100 * paged.HitRate, "0.0");
            Row("fetched (MiB)", resident.BytesFetched / 1048576.0, paged.BytesFetched / 1048576.0, "0.0");
            Row("stall (s)", resident.StallSeconds, paged.StallSeconds, "0.00");
            var same = resident.Results.Zip(paged.Results).All(x => x.First.TokenIds.SequenceEqual(x.Second.TokenIds));
            Console.WriteLine(same
                ? "tokens     every request's tokens identical to the all-resident run"
                : "tokens     DIFFER from the all-resident run");
            return same ? 0 : 1;
        }
        finally
        {
            File.Delete(tokensFile);
        }

        async Task<Run> ServeAsync(string arguments, bool live)
        {
            await using var server = await ServeChild.StartAsync(arguments, cancellationToken);
            // One short request first so that the measured ones do not pay for JIT compilation.
            await ChatStream.RunAsync(server.Http, "Hi", 2, null, cancellationToken);
            var gate = new Lock();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var results = await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                if (live && i == 0)
                    Console.Write($"#1 > {Questions[0]}\n#1 < ");
                var result = await ChatStream.RunAsync(server.Http, Questions[i % Questions.Length], maxTokens, live && i == 0 ? piece =>
                {
                    lock (gate)
                        Console.Write(Printable(piece));
                } : null, cancellationToken);
                if (live)
                {
                    lock (gate)
                        Console.WriteLine(i == 0 ? "" : $"#{i + 1} > {Questions[i % Questions.Length]}\n#{i + 1} < {Printable(result.Text)}");
                }
                return result;
            }));
            var seconds = clock.Elapsed.TotalSeconds;
            var hits = await server.MetricAsync("fabric_expert_hits_total", cancellationToken);
            var misses = await server.MetricAsync("fabric_expert_misses_total", cancellationToken);
            return new Run(results, results.Sum(r => r.TokenIds.Length) / seconds, hits + misses == 0 ? 0 : hits / (hits + misses),
                await server.MetricAsync("fabric_expert_bytes_fetched_total", cancellationToken), await server.MetricAsync("fabric_stall_seconds_total", cancellationToken));
        }
    }

    /// <summary>The generated model's text is arbitrary bytes: control characters are shown as '·'.</summary>
    private static string Printable(string text) => string.Concat(text.Select(c => char.IsControl(c) ? '·' : c));

    private static void Row(string name, double resident, double paged, string format) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-26}{resident.ToString(format, CultureInfo.InvariantCulture),14}{paged.ToString(format, CultureInfo.InvariantCulture),14}{(resident > 0 ? (paged / resident).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "-"),8}"));

    private sealed record Run(ChatResult[] Results, double TokensPerSecond, double HitRate, double BytesFetched, double StallSeconds);
}
