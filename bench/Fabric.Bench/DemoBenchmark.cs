using System.Globalization;
using Fabric.Bench.Engine;
using Fabric.Engine.Runtime;

namespace Fabric.Bench;

/// <summary>
/// `./fabric demo`: the main job on one machine. Generates (or reuses) the small model with a Mixtral-like router
/// skew, starts a real fabric-pool child process on loopback, runs the engine with a quarter of the experts resident
/// (experts paged from the pool over tcp), streams the tokens, and prints the summary beside an all-resident run.
/// </summary>
public sealed class DemoBenchmark : IBenchmark
{
    public string Name => "demo";

    public string Summary => "small model, pool daemon on loopback, engine with 25% of experts resident beside all-resident";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = new BenchOptions(Name, args, ["--tokens"]);
        if (options.Has("--help"))
        {
            Console.WriteLine("usage: fabric bench demo [--tokens N]");
            return 0;
        }
        var newTokens = options.Int("--tokens", 48);
        var model = ModelCache.Ensure("small", skew: 1.0);
        var tokensFile = Path.Combine(Path.GetTempPath(), $"fabric-demo-tokens-{Environment.ProcessId}");
        await File.WriteAllTextAsync(tokensFile, "demo:demo-secret\n", cancellationToken);
        try
        {
            Console.WriteLine($"model      {model}");
            await using var pool = await PoolChild.StartAsync(model, tokensFile, null, cancellationToken);
            var endpoint = pool.Endpoint("tcp");
            Console.WriteLine($"pool       fabric-pool child process listening on {endpoint}");

            var config = Fabric.Model.ModelConfigReader.Load(Path.Combine(model, "config.json"));
            var prompt = EngineRun.Prompt(16, config.VocabSize);
            var engine = new EngineOptions { Policy = "activation", Prefetch = "next-layer", MaxSeqLen = 256 };

            // A short run first so that neither measured run pays for JIT compilation.
            await EngineRun.RunAsync(new LaunchSettings { ModelDirectory = model, Engine = engine }, prompt, 4, cancellationToken: cancellationToken);

            Console.WriteLine();
            Console.WriteLine("all experts resident (local checkpoint):");
            var resident = await EngineRun.RunAsync(new LaunchSettings { ModelDirectory = model, Engine = engine }, prompt, newTokens, stream: true, cancellationToken: cancellationToken);
            Console.WriteLine(resident.ToText());

            var slots = config.TotalExperts / 4;
            Console.WriteLine();
            Console.WriteLine($"{slots} of {config.TotalExperts} experts resident (25%), the rest paged from the pool over tcp:");
            var paged = await EngineRun.RunAsync(new LaunchSettings
            {
                PoolEndpoints = [endpoint],
                Token = "demo:demo-secret",
                Engine = engine with { MaxSlots = slots },
            }, prompt, newTokens, stream: true, cancellationToken: cancellationToken);
            Console.WriteLine(paged.ToText());

            Console.WriteLine();
            Console.WriteLine($"{"",-22}{"all-resident",14}{"25% resident",14}{"ratio",8}");
            Row("decode tokens/s", resident.DecodeTokensPerSecond, paged.DecodeTokensPerSecond, "0.00");
            Row("time to first (ms)", resident.TimeToFirstTokenMs, paged.TimeToFirstTokenMs, "0.0");
            Row("hit rate (%)", 100 * resident.HitRate, 100 * paged.HitRate, "0.0");
            Row("fetched (MiB)", resident.BytesFetched / 1048576.0, paged.BytesFetched / 1048576.0, "0.0");
            Row("stall (ms)", resident.StallMs, paged.StallMs, "0.0");
            var same = resident.Tokens.SequenceEqual(paged.Tokens);
            Console.WriteLine(same
                ? "tokens     identical to the all-resident run"
                : "tokens     DIFFER from the all-resident run");
            return same ? 0 : 1;
        }
        finally
        {
            File.Delete(tokensFile);
        }
    }

    private static void Row(string name, double resident, double paged, string format) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-22}{resident.ToString(format, CultureInfo.InvariantCulture),14}{paged.ToString(format, CultureInfo.InvariantCulture),14}{(resident > 0 ? (paged / resident).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "-"),8}"));
}
