using System.Diagnostics;
using Fabric.Sim.Network;
using Fabric.Sim.Network.Fifo;
using Fabric.Sim.Network.MaxMin;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Run;

/// <summary>Runs a workload on a topology to the end and gathers the results.</summary>
public static class SimRunner
{
    /// <summary>The fewest engines worth a thread of their own with fifo links: below that, keeping the threads in step
    /// costs more than they save.</summary>
    public const int EnginesPerThread = 32;

    /// <param name="topology">The machines.</param>
    /// <param name="workload">What runs on them.</param>
    /// <param name="progress">Told the fraction of layer visits done, at most every 100 ms of wall time: adding up every
    /// engine's visits costs a cache miss per engine.</param>
    /// <param name="threads">With fifo links, how many threads run the engines (<see cref="FifoWindows"/>; the same
    /// results on any number). By default one per core, with at least <see cref="EnginesPerThread"/> engines each.</param>
    /// <param name="windowNs">With fifo links, the windows' length: by default the shortest fetch, the longest that
    /// keeps the run exact; any shorter one gives the same run, only slower.</param>
    public static SimResult Run(Topology.Topology topology, Workload workload, IProgress<double>? progress = null, int? threads = null, long? windowNs = null) =>
        Run(topology, workload, progress, threads, windowNs, warmEveryEngine: false);

    // warmEveryEngine: with fifo links, warm every engine before its turn, not only while its thread waits (tests).
    internal static SimResult Run(Topology.Topology topology, Workload workload, IProgress<double>? progress, int? threads, long? windowNs, bool warmEveryEngine)
    {
        workload = workload.PredictorChecked();
        var stopwatch = Stopwatch.StartNew();
        var world = new SimWorld(topology, workload.Sharing, workload.RateQuantumNs);
        var pools = (workload.Pool.Count > 0 ? workload.Pool.Select(p => topology.Get(p)) : topology.Nodes.Where(n => n.IsPool))
            .Select(n => n.Id).ToList();
        if (pools.Count == 0)
            throw new TopologyException($"Topology '{topology.Name}' has no pool memory node for the experts.");
        var engines = workload.Engines.Select((name, i) => new EngineModel(world, workload, i, topology.Get(name), pools)).ToList();
        world.Network.DeclareRoutes([.. engines.SelectMany(e => e.Routes).Select(r => r.Channels).Distinct()]);
        var total = (double)workload.DecodeTokens * workload.Model.ExpertLayers * engines.Count;
        var lastReport = TimeSpan.Zero;
        void Report()
        {
            if (progress is null || stopwatch.Elapsed - lastReport < TimeSpan.FromMilliseconds(100))
                return;
            lastReport = stopwatch.Elapsed;
            progress.Report(Math.Min(1, engines.Sum(e => e.Result.Visits) / total));
        }
        var sim = world.Simulation;
        // Windows need every fetch to take some time; an engine reading from its own node would land one at once.
        var shortestFetch = engines.Count > 0 ? engines.Min(e => e.ShortestFetchNs) : 0;
        if (windowNs is < 1 || windowNs > shortestFetch)
            throw new ArgumentOutOfRangeException(nameof(windowNs), $"A window of {windowNs} ns is outside 1 ns to the run's shortest fetch ({shortestFetch} ns).");
        var windows = world.Network is FifoNetwork fifo && shortestFetch >= 1
            ? new FifoWindows(engines, fifo, workload.Model.ExpertBytes, windowNs ?? shortestFetch,
                threads ?? Math.Clamp(engines.Count / EnginesPerThread, 1, Environment.ProcessorCount), warmEveryEngine)
            : null;
        foreach (var e in engines)
            e.Start();
        long events;
        if (windows is not null)
        {
            windows.Run(Report);
            events = windows.Events;
        }
        else
        {
            while (sim.Pending > 0)
            {
                sim.Run(sim.Now + 10_000_000);
                Report();
            }
            events = sim.EventsProcessed;
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
            Predictor = workload.Predictor,
            Slots = workload.Slots,
            Engines = engines.Select(e => e.Result).ToList(),
            Channels = channels,
            MakespanNs = makespan,
            Events = events,
            WallSeconds = stopwatch.Elapsed.TotalSeconds,
            Threads = windows?.Threads ?? 1,
            Reallocations = maxMin?.Reallocations ?? 0,
            FlowsReallocated = maxMin?.FlowsReallocated ?? 0,
            Refills = maxMin?.Refills ?? 0,
            CascadedChanges = maxMin?.CascadedChanges ?? 0,
        };
    }
}
