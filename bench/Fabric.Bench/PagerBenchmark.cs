using System.Globalization;
using System.Text.Json;
using Fabric.Common;
using Fabric.Engine.Paging;
using Fabric.Sim.Workloads;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench pager`: replays routing through the pager for every policy and prefetch mode (no clock, no I/O) and
/// prints hit rates beside Belady's demand hit rate at the same slot count. The routing is a recorded trace
/// (`--trace`, the engine's or one from `sim import-trace`) or draws from real per-layer popularity (`--counts`).
/// Next-layer prefetch replays the predictions the engine recorded; a trace without them needs
/// `--predictor-accuracy P`. The oracle (the true next layer) is kept as a labelled upper bound.
/// </summary>
public sealed class PagerBenchmark : IBenchmark
{
    private const string Usage = """
        usage: fabric bench pager (--trace PATH | --counts PATH [--tokens N] [--top-k K] [--seed S]) [--slots 8,16]
                                  [--predictor-accuracy P] [--json PATH]
          --trace               a routing trace: `fabric engine generate --trace-out PATH`, or `fabric sim import-trace`
          --counts              per-layer expert counts ({"layer": {"expert": count}}); tokens draw top-k by popularity
          --predictor-accuracy  next-layer prefetch with a predictor right with probability P (needed when the trace
                                records no predictions; the engine's own predictions are used otherwise)
          --json                also write every row as JSON to PATH
        """;

    public string Name => "pager";

    public string Summary => "replay routing through every policy; hit rates beside Belady's";

    private sealed record Visit(int Layer, int[] Experts, int[]? Predicted);

    private sealed record Row(int Slots, string Policy, string Prefetch, string Predictor, bool Online, double HitRate, double VsBelady, double PrefetchPrecision, double FetchesVsBelady);

    public Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = new BenchOptions(Name, args, ["--trace", "--counts", "--tokens", "--top-k", "--seed", "--slots", "--predictor-accuracy", "--json"]);
        if (options.Has("--help"))
        {
            Console.WriteLine(Usage);
            return Task.FromResult(0);
        }
        var requestedSlots = options.Ints("--slots");
        double? accuracy = options.Text("--predictor-accuracy") is null ? null : options.Positive("--predictor-accuracy", 1, max: 1);
        var (source, layers, experts, topK, visits) = LoadVisits(options);
        var recorded = visits.All(v => v.Predicted is not null);
        var future = BeladyPolicy.AccessSequence(visits.Select(v => (v.Layer, (IEnumerable<int>)v.Experts)));
        var slotCounts = requestedSlots ?? [layers * experts / 2, layers * experts / 4, layers * experts / 8];
        Console.WriteLine($"{source}: {layers} layers × {experts} experts, top-{topK}, {visits.Count} layer visits, {future.Count} expert uses");
        var predictor = accuracy is { } p ? $"accuracy {p.ToString("0.###", CultureInfo.InvariantCulture)}" : recorded ? "recorded" : null;
        if (predictor is null)
            Console.WriteLine("next-layer: the routing records no predictions, so only its oracle row is shown; give --predictor-accuracy P for an online one.");
        Console.WriteLine("Prefetched experts land before their use here (no clock): a prefetch hit costs a fetch all the same, so 'fetched ÷ belady' shows the traffic each row moves.");
        Console.WriteLine($"{"slots",6} {"policy",-11} {"prefetch",-11} {"predictor",-15} {"hit rate",9} {"÷ belady",9} {"prefetch precision",19} {"fetched ÷ belady",17}");
        var rows = new List<Row>();
        foreach (var slots in slotCounts.Where(s => s >= topK))
        {
            var beladyStats = Replay(layers, experts, topK, slots, "belady", "none", null, visits, future);
            var belady = beladyStats.HitRate;
            var atSlots = new List<Row>();
            foreach (var policy in EvictionPolicies.Names)
            {
                foreach (var prefetch in Prefetchers.Names)
                {
                    var predictors = prefetch != "next-layer" ? [""] : predictor is null ? ["oracle"] : new[] { predictor, "oracle" };
                    foreach (var pr in predictors)
                    {
                        var s = Replay(layers, experts, topK, slots, policy, prefetch, pr, visits, future, accuracy);
                        var row = new Row(slots, policy, prefetch, pr, policy != "belady" && pr != "oracle", s.HitRate, s.HitRate / Math.Max(belady, 1e-9), s.PrefetchPrecision,
                            (s.Misses + s.PrefetchesIssued) / (double)Math.Max(1, beladyStats.Misses));
                        atSlots.Add(row);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{slots,6} {policy,-11} {prefetch,-11} {(pr.Length == 0 ? "-" : pr),-15} {100 * row.HitRate,8:0.0}% {row.VsBelady,9:0.00} {(prefetch == "none" ? "-" : $"{100 * row.PrefetchPrecision:0.0}%"),19} {row.FetchesVsBelady,17:0.00}"));
                    }
                }
            }
            var best = atSlots.Where(r => r.Online).MaxBy(r => r.HitRate)!;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{slots,6} best online (no future, no oracle): {best.Policy} + {best.Prefetch}{(best.Predictor.Length > 0 ? $" ({best.Predictor})" : "")} {100 * best.HitRate:0.0}% = {best.VsBelady:0.00} × Belady's demand hit rate {100 * belady:0.0}%, moving {best.FetchesVsBelady:0.00} × its fetches"));
            rows.AddRange(atSlots);
        }
        if (options.Text("--json") is { } json)
            File.WriteAllText(json, JsonSerializer.Serialize(rows.Select(r => new Dictionary<string, object>
            {
                ["source"] = source, ["slots"] = r.Slots, ["policy"] = r.Policy, ["prefetch"] = r.Prefetch, ["predictor"] = r.Predictor,
                ["online"] = r.Online, ["hit_rate"] = r.HitRate, ["vs_belady"] = r.VsBelady, ["prefetch_precision"] = r.PrefetchPrecision, ["fetched_vs_belady"] = r.FetchesVsBelady,
            }), new JsonSerializerOptions { WriteIndented = true }));
        return Task.FromResult(0);
    }

    private static (string Source, int Layers, int Experts, int TopK, List<Visit> Visits) LoadVisits(BenchOptions options)
    {
        if (options.Text("--trace") is { } trace)
        {
            var t = RoutingTrace.Load(trace);
            return (trace, t.Model.NumHiddenLayers, t.Model.NumLocalExperts, t.Model.NumExpertsPerTok,
                [.. t.Visits.Select(v => new Visit(v.Layer, v.Experts, v.PredictedNext))]);
        }
        if (options.Text("--counts") is { } countsPath)
        {
            var counts = ExpertCounts.Load(countsPath);
            var (layers, experts) = (counts.Length, counts.Max(c => c.Length));
            var topK = options.Int("--top-k", 2, max: experts);
            var tokens = options.Int("--tokens", 1000, max: 1_000_000);
            var seed = options.Int("--seed", 1, min: 0);
            var routing = new SyntheticRouting(new ExpertPopularity(layers, experts, seed, weights: counts), topK, 1, seed);
            var buffer = new int[topK];
            var visits = new List<Visit>(tokens * layers);
            for (var step = 0; step < tokens; step++)
            {
                for (var layer = 0; layer < layers; layer++)
                {
                    var n = routing.Next(step, layer, buffer);
                    visits.Add(new Visit(layer, buffer[..n], null));
                }
            }
            return ($"{Path.GetFileName(countsPath)} (each token draws top-{topK} by the real per-layer popularity, independently; {tokens} tokens, seed {seed})", layers, experts, topK, visits);
        }
        throw new FabricException("bench pager needs --trace PATH (a routing trace) or --counts PATH (per-layer expert counts); see --help.");
    }

    private static PagerStats Replay(int layers, int experts, int topK, int slots, string policy, string prefetch, string? predictor,
        List<Visit> visits, List<ExpertKey> future, double? accuracy = null)
    {
        var pager = ExpertPager.Create(new PagerSettings(layers, experts, topK, slots, policy, prefetch) { FutureAccesses = future });
        var plan = new ExpertAssignment[experts];
        var fetches = new ExpertAssignment[experts];
        var random = new Random(7);
        for (var v = 0; v < visits.Count; v++)
        {
            var n = pager.BeginLayer(visits[v].Layer, visits[v].Experts, plan);
            for (var i = 0; i < n; i++)
            {
                if (plan[i].Kind is AssignmentKind.Fetch or AssignmentKind.Pending)
                    pager.FetchCompleted(plan[i].Key);
            }
            while (pager.DeferredCount > 0)
            {
                foreach (var e in pager.CurrentExperts)
                    pager.Release(new ExpertKey(visits[v].Layer, e));
                var d = pager.AssignDeferred(plan);
                for (var i = 0; i < d; i++)
                {
                    if (plan[i].Kind == AssignmentKind.Fetch)
                        pager.FetchCompleted(plan[i].Key);
                }
            }
            var m = pager.PrefetchNext(pager.Prefetcher.WantsRouterPrediction ? Prediction(visits, v, predictor, accuracy, experts, random) : [], fetches);
            for (var i = 0; i < m; i++)
                pager.FetchCompleted(fetches[i].Key);
            pager.EndLayer();
        }
        return pager.Stats;
    }

    // What next-layer prefetch is told during visit v: the recorded prediction, the true next layer (oracle), or the
    // true next layer with each expert replaced by a random one with probability 1 − accuracy.
    private static int[] Prediction(List<Visit> visits, int v, string? predictor, double? accuracy, int experts, Random random)
    {
        if (predictor == "recorded")
            return visits[v].Predicted ?? [];
        var truth = v + 1 < visits.Count && visits[v + 1].Layer == visits[v].Layer + 1 ? visits[v + 1].Experts.Distinct().ToArray() : [];
        if (predictor == "oracle" || accuracy is null)
            return truth;
        return truth.Select(e => random.NextDouble() < accuracy ? e : random.Next(experts)).Distinct().ToArray();
    }
}
