using System.Globalization;
using System.Text.Json;
using Fabric.Bench.Engine;
using Fabric.Engine.Paging;
using Fabric.Engine.Runtime;
using Fabric.Model;
using Fabric.Transport;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench engine`: decode tokens/s of the all-resident engine and, beside it as ratios, the engine with 50%,
/// 25% and 12.5% of experts resident for every policy, with and without prefetch, over shm and tcp from a real
/// fabric-pool child process; a no-slot baseline (top-k slots: every routed expert fetched on every use); and the
/// best online policy's hit rate against Belady's at the same slot count. At router skew 0 and at skew 1 (the top
/// expert takes about 17% of a layer's selections with 8 experts, top-2, as in Mixtral).
/// </summary>
public sealed class EngineBenchmark : IBenchmark
{
    public string Name => "engine";

    public string Summary => "decode tokens/s with 50/25/12.5% of experts resident per policy/prefetch/transport, as ratios to all-resident";

    private sealed record Row(double Skew, string Transport, string Resident, int Slots, string Policy, string Prefetch, double TokensPerSecond,
        double Ratio, double HitRate, double StallMs, long BytesFetched, double Precision, bool SameTokens);

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var parsed = new BenchOptions(Name, args, ["--preset", "--tokens", "--prompt", "--transports", "--fractions", "--policies", "--prefetch", "--skews", "--repeat", "--json", "--family"], ["--quick"]);
        if (parsed.Has("--help"))
        {
            Console.WriteLine(Usage);
            return 0;
        }
        if (parsed.Text("--family") is not null)
        {
            return await FamilyEngineBenchmark.RunAsync(parsed.Choices("--family", [], [.. Architectures.All]), parsed.Choice("--preset", "medium", [.. ModelPresets.Names])!,
                parsed.Int("--tokens", 8), parsed.Int("--prompt", 16), parsed.Text("--json"), cancellationToken);
        }
        var o = Options.From(parsed);
        var rows = new List<Row>();
        var checks = new List<string>();
        foreach (var skew in o.Skews)
        {
            var model = ModelCache.Ensure(o.Preset, skew);
            var config = ModelConfigReader.Load(Path.Combine(model, "config.json"));
            var prompt = EngineRun.Prompt(o.PromptTokens, config.VocabSize);
            var baseOptions = new EngineOptions { MaxSeqLen = Math.Max(64, o.PromptTokens + o.Tokens + 8) };
            var tokensFile = Path.Combine(Path.GetTempPath(), $"fabric-bench-tokens-{Environment.ProcessId}");
            await File.WriteAllTextAsync(tokensFile, "bench:bench-secret\n", cancellationToken);
            var shmPath = o.Transports.Contains("shm") ? $"/dev/shm/fabric-bench-{Environment.ProcessId}" : null;
            try
            {
                Console.Error.WriteLine($"skew {skew}: starting fabric-pool on {model}...");
                await using var pool = await PoolChild.StartAsync(model, tokensFile, shmPath, cancellationToken);

                await EngineRun.RunAsync(new LaunchSettings { ModelDirectory = model, Engine = baseOptions }, prompt, 4, cancellationToken: cancellationToken);
                var tracePath = Path.Combine(Path.GetTempPath(), $"fabric-bench-trace-{Environment.ProcessId}.jsonl");
                var resident = await EngineRun.RunAsync(new LaunchSettings { ModelDirectory = model, Engine = baseOptions }, prompt, o.Tokens, traceOut: tracePath, cancellationToken: cancellationToken);
                var baseline = resident.DecodeTokensPerSecond;
                for (var again = 1; again < o.Repeat; again++)
                    baseline = Math.Max(baseline, (await EngineRun.RunAsync(new LaunchSettings { ModelDirectory = model, Engine = baseOptions }, prompt, o.Tokens, cancellationToken: cancellationToken)).DecodeTokensPerSecond);
                rows.Add(new Row(skew, "local", "100%", config.TotalExperts, "-", "-", baseline, 1, 1, 0, 0, 0, true));
                Progress(rows[^1]);

                foreach (var transport in o.Transports)
                {
                    var endpoint = pool.Endpoint(transport);
                    async Task<Row> Run(int slots, string label, string policy, string prefetch)
                    {
                        var settings = new LaunchSettings
                        {
                            PoolEndpoints = [FabricEndpoint.Parse(endpoint)],
                            Token = "bench:bench-secret",
                            BeladyTrace = policy == "belady" ? tracePath : null,
                            Engine = baseOptions with { MaxSlots = slots, Policy = policy, Prefetch = prefetch },
                        };
                        // Best of --repeat runs: on a shared machine the slowest runs measure the neighbours, not the engine.
                        GenerationSummary? s = null;
                        for (var attempt = 0; attempt < o.Repeat; attempt++)
                        {
                            var run = await EngineRun.RunAsync(settings, prompt, o.Tokens, cancellationToken: cancellationToken);
                            if (s is null || run.DecodeTokensPerSecond > s.DecodeTokensPerSecond)
                                s = run;
                        }
                        var row = new Row(skew, transport, label, s!.Slots, policy, prefetch, s.DecodeTokensPerSecond, s.DecodeTokensPerSecond / baseline,
                            s.HitRate, s.StallMs, s.BytesFetched, s.PrefetchPrecision, s.Tokens.SequenceEqual(resident.Tokens));
                        rows.Add(row);
                        Progress(row);
                        return row;
                    }

                    var noSlot = await Run(config.NumExpertsPerTok, "no-slot", "lru", "none");
                    foreach (var fraction in o.Fractions)
                    {
                        var slots = Math.Max(config.NumExpertsPerTok, (int)Math.Round(config.TotalExperts * fraction));
                        var label = string.Create(CultureInfo.InvariantCulture, $"{100 * fraction:0.#}%");
                        var group = new List<Row>();
                        foreach (var policy in o.Policies)
                        {
                            foreach (var prefetch in o.Prefetches)
                                group.Add(await Run(slots, label, policy, prefetch));
                        }
                        var online = group.Where(r => r.Policy != "belady" && r.Prefetch == "none").ToList();
                        var belady = group.FirstOrDefault(r => r.Policy == "belady" && r.Prefetch == "none");
                        if (online.Count > 0 && belady is not null)
                        {
                            var best = online.MaxBy(r => r.HitRate)!;
                            checks.Add(string.Create(CultureInfo.InvariantCulture,
                                $"skew {skew} {transport} {label}: best online hit rate {100 * best.HitRate:0.0}% ({best.Policy}) vs Belady {100 * belady.HitRate:0.0}% = {best.HitRate / Math.Max(belady.HitRate, 1e-9):0.00}× (target ≥ 0.9×)"));
                        }
                        if (Math.Abs(fraction - 0.25) < 1e-9)
                        {
                            var fastest = group.Where(r => r.Policy != "belady").MaxBy(r => r.TokensPerSecond)!;
                            checks.Add(string.Create(CultureInfo.InvariantCulture,
                                $"skew {skew} {transport} 25%: best {fastest.Policy}+{fastest.Prefetch} {fastest.TokensPerSecond:0.00} tok/s = {fastest.Ratio:0.00}× all-resident (target ≥ 0.8×), {fastest.TokensPerSecond / Math.Max(noSlot.TokensPerSecond, 1e-9):0.00}× the no-slot baseline (target ≥ 2.5×)"));
                        }
                    }
                }
                File.Delete(tracePath);
            }
            finally
            {
                File.Delete(tokensFile);
                if (shmPath is not null)
                {
                    foreach (var stale in Directory.GetFiles("/dev/shm", Path.GetFileName(shmPath) + "*"))
                        File.Delete(stale);
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine($"engine decode on {o.Preset} ({o.Tokens} tokens after a {o.PromptTokens}-token prompt, greedy, CPU, best of {o.Repeat}); ratio = tokens/s ÷ all-resident tokens/s of the same skew, same run");
        Console.WriteLine($"{"skew",5} {"transport",-9} {"resident",-8} {"slots",5} {"policy",-10} {"prefetch",-10} {"tok/s",8} {"ratio",6} {"hit",6} {"stall ms",9} {"fetched",10} {"prec",6} {"tokens",6}");
        foreach (var r in rows)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Skew,5:0.##} {r.Transport,-9} {r.Resident,-8} {r.Slots,5} {r.Policy,-10} {r.Prefetch,-10} {r.TokensPerSecond,8:0.00} {r.Ratio,6:0.00} {100 * r.HitRate,5:0.0}% {r.StallMs,9:0.0} {Fabric.Common.ByteSize.Format(r.BytesFetched),10} {100 * r.Precision,5:0}% {(r.SameTokens ? "same" : "DIFF"),6}"));
        }
        Console.WriteLine();
        foreach (var c in checks)
            Console.WriteLine(c);
        if (o.Json is not null)
            await File.WriteAllTextAsync(o.Json, JsonSerializer.Serialize(new { rows, checks }, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        return rows.All(r => r.SameTokens) ? 0 : 1;
    }

    private static void Progress(Row r) =>
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  skew {r.Skew} {r.Transport} {r.Resident} {r.Policy}/{r.Prefetch}: {r.TokensPerSecond:0.00} tok/s ({r.Ratio:0.00}×), hit {100 * r.HitRate:0.0}%"));

    private const string Usage = """
        usage: fabric bench engine [--preset tiny|small|medium] [--tokens N] [--prompt N] [--transports shm,tcp] [--fractions 0.5,0.25,0.125]
                                   [--policies lru,lfu,activation,belady] [--prefetch none,next-layer,history] [--skews 0,1] [--repeat N] [--json PATH] [--quick]
               fabric bench engine --family mixtral,qwen2_moe,qwen3_moe,olmoe,deepseek_v2 [--preset tiny|small|medium] [--tokens N] [--prompt N] [--json PATH]
                   all-resident decode tok/s of each family beside Mixtral's, weight bytes read per token vs active parameters, KV bytes per token
        """;

    private sealed record Options(string Preset, int Tokens, int PromptTokens, string[] Transports, double[] Fractions, string[] Policies, string[] Prefetches, double[] Skews, string? Json, int Repeat)
    {
        /// <summary>The options given; --quick only changes the defaults, so an option given beside it wins.</summary>
        public static Options From(BenchOptions options)
        {
            var quick = options.Has("--quick");
            return new Options(
                options.Choice("--preset", quick ? "small" : "medium", [.. ModelPresets.Names]),
                options.Int("--tokens", quick ? 16 : 24),
                options.Int("--prompt", 16),
                options.Choices("--transports", quick ? ["tcp"] : ["shm", "tcp"], "shm", "tcp"),
                options.Numbers("--fractions", [0.5, 0.25, 0.125]),
                options.Choices("--policies", quick ? ["lru", "activation", "belady"] : ["lru", "lfu", "activation", "belady"], EvictionPolicies.Names),
                options.Choices("--prefetch", ["none", "next-layer"], Prefetchers.Names),
                options.Numbers("--skews", [0, 1]),
                options.Text("--json"),
                options.Int("--repeat", 1));
        }
    }
}
