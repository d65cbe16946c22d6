using System.Globalization;
using Fabric.Engine.Paging;
using Fabric.Sim.Workloads;

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
        var options = new BenchOptions(Name, args, ["--trace", "--slots"]);
        if (options.Has("--help"))
        {
            Console.WriteLine("usage: fabric bench pager --trace PATH [--slots 8,16]   (record PATH with fabric engine generate --trace-out)");
            return Task.FromResult(0);
        }
        var trace = options.Text("--trace")
            ?? throw new Fabric.Common.FabricException("bench pager needs --trace PATH (record one with ./fabric engine generate --trace-out PATH).");
        var slotCounts = options.Ints("--slots") ?? [];
        var recorded = RoutingTrace.Load(trace);
        var (layers, experts, topK) = (recorded.Model.NumHiddenLayers, recorded.Model.NumLocalExperts, recorded.Model.NumExpertsPerTok);
        var visits = recorded.Visits.Select(v => (v.Layer, v.Experts)).ToList();
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
        var pager = ExpertPager.Create(new PagerSettings(layers, experts, topK, slots, policy, prefetch) { FutureAccesses = future });
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
}
