using System.Globalization;
using System.Text.Json;
using Fabric.Engine.Paging;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench pager --trace PATH [--slots 8,16]`: replays a recorded routing trace through the pager for every
/// policy and prefetch mode (no clock, no I/O) and prints hit rates beside Belady's at the same slot count.
/// Next-layer prefetch is fed the next visit's true top-k here (an oracle router), so its row is an upper bound.
/// </summary>
public sealed class PagerBenchmark : IBenchmark
{
    public string Name => "pager";

    public string Summary => "replay a routing trace through every policy; hit rates beside Belady's";

    public Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        string? trace = null;
        int[] slotCounts = [];
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--trace" && i + 1 < args.Length)
                trace = args[++i];
            else if (args[i] == "--slots" && i + 1 < args.Length)
                slotCounts = [.. args[++i].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))];
            else
            {
                Console.WriteLine("usage: fabric bench pager --trace PATH [--slots 8,16]   (record PATH with fabric engine generate --trace-out)");
                return Task.FromResult(args[i] is "-h" or "--help" ? 0 : 2);
            }
        }
        if (trace is null)
            throw new Fabric.Transport.FabricException("bench pager needs --trace PATH (record one with ./fabric engine generate --trace-out PATH).");
        var (layers, experts, topK, visits) = Read(trace);
        var future = BeladyPolicy.AccessSequence(visits.Select(v => (v.Layer, (IEnumerable<int>)v.Experts)));
        if (slotCounts.Length == 0)
            slotCounts = [layers * experts / 2, layers * experts / 4, layers * experts / 8];
        Console.WriteLine($"{trace}: {layers} layers × {experts} experts, top-{topK}, {visits.Count} layer visits, {future.Count} expert uses");
        Console.WriteLine($"{"slots",6} {"policy",-11} {"prefetch",-11} {"hit rate",9} {"÷ belady",9} {"prefetch precision",19}");
        foreach (var slots in slotCounts.Where(s => s >= topK))
        {
            var belady = Replay(layers, experts, topK, slots, "belady", "none", visits, future);
            foreach (var policy in EvictionPolicies.Names)
            {
                foreach (var prefetch in Prefetchers.Names)
                {
                    var s = Replay(layers, experts, topK, slots, policy, prefetch, visits, future);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{slots,6} {policy,-11} {prefetch,-11} {100 * s.HitRate,8:0.0}% {s.HitRate / Math.Max(belady.HitRate, 1e-9),9:0.00} {100 * s.PrefetchPrecision,18:0.0}%"));
                }
            }
        }
        return Task.FromResult(0);
    }

    private static PagerStats Replay(int layers, int experts, int topK, int slots, string policy, string prefetch, List<(int Layer, int[] Experts)> visits, List<ExpertKey> future)
    {
        var pager = new ExpertPager(layers, experts, slots, EvictionPolicies.Create(policy, layers, experts, topK, future),
            Prefetchers.Create(prefetch, layers, experts, topK), reserveSlots: topK);
        var plan = new ExpertAssignment[experts];
        var fetches = new ExpertAssignment[experts];
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
            var next = v + 1 < visits.Count && visits[v + 1].Layer == visits[v].Layer + 1 ? visits[v + 1].Experts.Distinct().ToArray() : [];
            var m = pager.PrefetchNext(pager.Prefetcher.WantsRouterPrediction ? next : [], fetches);
            for (var i = 0; i < m; i++)
                pager.FetchCompleted(fetches[i].Key);
            pager.EndLayer();
        }
        return pager.Stats;
    }

    private static (int Layers, int Experts, int TopK, List<(int Layer, int[] Experts)> Visits) Read(string path)
    {
        int layers = 0, experts = 0, topK = 0;
        var visits = new List<(int, int[])>();
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line))
                continue;
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.GetProperty("kind").GetString() == "header")
            {
                var m = root.GetProperty("model");
                layers = m.GetProperty("num_hidden_layers").GetInt32();
                experts = m.GetProperty("num_local_experts").GetInt32();
                topK = m.GetProperty("num_experts_per_tok").GetInt32();
                continue;
            }
            if (root.GetProperty("kind").GetString() != "route")
                continue;
            visits.Add((root.GetProperty("layer").GetInt32(),
                [.. root.GetProperty("experts").EnumerateArray().SelectMany(p => p.EnumerateArray().Select(e => e.GetInt32()))]));
        }
        return (layers, experts, topK, visits);
    }
}
