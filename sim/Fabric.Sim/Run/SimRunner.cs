using System.Diagnostics;
using Fabric.Sim.Core;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Run;

/// <summary>Runs a workload on a topology to the end and gathers the results.</summary>
public static class SimRunner
{
    public static SimResult Run(Topology.Topology topology, Workload workload, IProgress<double>? progress = null)
    {
        var stopwatch = Stopwatch.StartNew();
        var world = new SimWorld(topology, workload.Sharing, workload.RateQuantumNs);
        var pools = (workload.Pool.Count > 0 ? workload.Pool.Select(p => topology.Get(p)) : topology.Nodes.Where(n => n.IsPool))
            .Select(n => n.Id).ToList();
        if (pools.Count == 0)
            throw new TopologyException($"Topology '{topology.Name}' has no pool memory node for the experts.");
        var engines = workload.Engines.Select((name, i) => new EngineModel(world, workload, i, topology.Get(name), pools)).ToList();
        world.Network.DeclareRoutes([.. engines.SelectMany(e => e.Routes).Select(r => r.Channels).Distinct()]);
        foreach (var e in engines)
            e.Start();
        var total = (double)workload.DecodeTokens * workload.Model.NumHiddenLayers * engines.Count;
        var sim = world.Simulation;
        while (sim.Pending > 0)
        {
            sim.Run(sim.Now + 10_000_000);
            progress?.Report(Math.Min(1, engines.Sum(e => e.Result.Visits) / total));
        }
        foreach (var e in engines)
        {
            e.Result.Hits = e.Pager.Stats.Hits;
            e.Result.Misses = e.Pager.Stats.Misses;
            e.Result.PrefetchPrecision = e.Pager.Stats.PrefetchPrecision;
        }
        // The run ends when its last engine finishes or its last transfer (a prefetch) lands, whichever is later: not
        // where the clock stands (the end of the last progress window) nor at a stale event after the end.
        var makespan = Math.Max(1, Math.Max(engines.Max(e => (long?)e.Result.FinishedAtNs) ?? 0, world.Network.LastCompletionNs));
        var carried = world.Network.BytesCarried;
        var channels = new List<ChannelLoad>();
        for (var c = 0; c < carried.Length; c++)
        {
            if (carried[c] <= 0)
                continue;
            var link = topology.Links[c / 2];
            channels.Add(new ChannelLoad(topology.DescribeChannel(c), link.Kind, link.Bandwidth, carried[c], carried[c] / (link.Bandwidth * makespan / 1e9)));
        }
        channels.Sort((a, b) => b.Utilisation.CompareTo(a.Utilisation));
        var maxMin = world.Network as FlowNetwork;
        return new SimResult
        {
            Topology = topology.Name,
            Workload = workload.Name,
            Policy = workload.Policy,
            Sharing = SharingNames.Of(workload.Sharing),
            Prefetch = workload.Prefetch,
            Slots = workload.Slots,
            Engines = engines.Select(e => e.Result).ToList(),
            Channels = channels,
            MakespanNs = makespan,
            Events = sim.EventsProcessed,
            WallSeconds = stopwatch.Elapsed.TotalSeconds,
            Reallocations = maxMin?.Reallocations ?? 0,
            FlowsReallocated = maxMin?.FlowsReallocated ?? 0,
            Refills = maxMin?.Refills ?? 0,
            CascadedChanges = maxMin?.CascadedChanges ?? 0,
        };
    }
}
