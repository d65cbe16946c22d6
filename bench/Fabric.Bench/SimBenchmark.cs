using System.Diagnostics;
using Fabric.Common;
using Fabric.Sim.Clock;
using Fabric.Sim.Network;
using Fabric.Sim.Network.Fifo;
using Fabric.Sim.Network.MaxMin;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench sim`: the simulator's event rate on one core beside raw PriorityQueue push/pop in the same run,
/// and a 1,024-GPU RDMA-pool topology decoding a 32-layer, 64-expert model, with how much of its time the bare queue
/// would take for its events at that raw rate. This process runs with tiered compilation off (the compute kernels of the
/// other benchmarks run optimised from their first call); the 1,024-GPU run is the simulator's as fabric-sim runs it,
/// tiered with dynamic PGO, so it runs in a child process of this benchmark (--scale-only) that has tiering on.
/// Options: --events N (default 5,000,000), --tokens N (default 1000), --sharing fifo|max-min (the 1,024-GPU run's links;
/// default fifo, about a minute; max-min, exact, takes about 14), --rate-quantum DURATION (max-min only; default 0:
/// exact sharing), --skip-scale.
/// </summary>
public sealed class SimBenchmark : IBenchmark
{
    public string Name => "sim";

    public string Summary => "simulator events/s beside raw PriorityQueue, and a 1,024-GPU RDMA-pool decode";

    public Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = new BenchOptions(Name, args, ["--events", "--tokens", "--sharing", "--rate-quantum", "--queue-rate"], ["--skip-scale", "--scale-only"]);
        if (options.Has("--help"))
        {
            Console.WriteLine("usage: fabric bench sim [--events N] [--tokens N] [--sharing fifo|max-min] [--rate-quantum DURATION] [--skip-scale]");
            Console.WriteLine("       (--sharing: the 1,024-GPU run's links, fifo by default; max-min is exact and takes about 14 minutes)");
            Console.WriteLine("       (--scale-only [--queue-rate EVENTS/S]: only the 1,024-GPU run, as the benchmark runs it in a child process)");
            return Task.FromResult(0);
        }
        var events = options.Int("--events", 5_000_000, min: 1000);
        var tokens = options.Int("--tokens", 1000);
        var quantum = 0L;
        if (options.Text("--rate-quantum") is { } q && !Units.TryParseDuration(q, out quantum))
            throw new FabricException($"--rate-quantum '{q}' for bench sim: give a duration such as 1ms.");
        var sharingName = options.Text("--sharing") ?? SharingNames.Fifo;
        var sharing = SharingNames.Parse(sharingName)
            ?? throw new FabricException($"--sharing '{sharingName}' for bench sim: use {string.Join(" or ", SharingNames.All)}.");
        if (sharing == Sharing.Fifo && quantum > 0)
            throw new FabricException("--rate-quantum for bench sim applies to max-min sharing only; add --sharing max-min.");
        if (options.Has("--scale-only"))
        {
            var measure = options.Text("--queue-rate") is null;
            var rate = measure ? RawQueue(1_000_000) : options.Int("--queue-rate", 1);
            if (measure)
                Console.WriteLine($"{"raw PriorityQueue push+pop",-44} {rate / 1e6,8:0.00} M/s");
            Scale(tokens, sharing, quantum, rate, cancellationToken);
            return Task.FromResult(0);
        }

        var baseline = RawQueue(events);
        var core = EventLoop(events);
        Console.WriteLine($"{"raw PriorityQueue push+pop",-44} {baseline / 1e6,8:0.00} M/s");
        Console.WriteLine($"{"simulator events (handler dispatch)",-44} {core / 1e6,8:0.00} M/s   {core / baseline:0.00}x baseline");
        var (flows, flowsPerSecond) = FlowEvents(events / 10, sim => new FlowNetwork(sim, [.. Enumerable.Repeat(25e9, 256)]));
        Console.WriteLine($"{"simulator events with fair-shared flows",-44} {flows / 1e6,8:0.00} M/s   {flows / baseline:0.00}x baseline " +
            $"({flowsPerSecond / 1e6:0.00} M flows/s: the events per flow depend on how the network schedules its work)");
        var (fifo, fifoPerSecond) = FlowEvents(events / 10, sim => new FifoNetwork(sim, [.. Enumerable.Repeat(25e9, 256)]));
        Console.WriteLine($"{"simulator events with fifo flows",-44} {fifo / 1e6,8:0.00} M/s   {fifo / baseline:0.00}x baseline " +
            $"({fifoPerSecond / 1e6:0.00} M flows/s" + (flowsPerSecond > 0 ? $", {fifoPerSecond / flowsPerSecond:0.0}x the fair-shared flows/s)" : ")"));

        if (!options.Has("--skip-scale"))
        {
            var queueRate = events >= 1_000_000 ? baseline : RawQueue(1_000_000);
            ScaleInChild(["--tokens", $"{tokens}", "--sharing", sharingName, "--rate-quantum", $"{quantum}ns", "--queue-rate", $"{(int)queueRate}"], cancellationToken);
        }
        return Task.FromResult(0);
    }

    // Runs `fabric-bench sim --scale-only ...` with tiered compilation on; it writes to this process's console.
    private static void ScaleInChild(string[] arguments, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false };
        info.ArgumentList.Add(typeof(SimBenchmark).Assembly.Location);
        info.ArgumentList.Add("sim");
        info.ArgumentList.Add("--scale-only");
        foreach (var a in arguments)
            info.ArgumentList.Add(a);
        info.Environment["DOTNET_TieredCompilation"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var child = Process.Start(info) ?? throw new FabricException("bench sim could not start its scale run (dotnet).");
        using (cancellationToken.Register(() => child.Kill(entireProcessTree: true)))
            child.WaitForExit();
        cancellationToken.ThrowIfCancellationRequested();
        if (child.ExitCode != 0)
            throw new FabricException($"bench sim's scale run (a child process) failed with exit code {child.ExitCode}.");
    }

    // Baseline: the same queue type and key, no handler, no simulation.
    private static double RawQueue(int n)
    {
        var queue = new PriorityQueue<int, EventKey>(1024);
        var random = new Random(1);
        for (var i = 0; i < 1000; i++)
            queue.Enqueue(i, new EventKey(random.Next(1000), i));
        var stopwatch = Stopwatch.StartNew();
        long seq = 1000;
        for (var i = 0; i < n; i++)
        {
            queue.TryDequeue(out var item, out var key);
            queue.Enqueue(item, new EventKey(key.Time + random.Next(1000), ++seq));
        }
        return n / stopwatch.Elapsed.TotalSeconds;
    }

    private sealed class Ticker(Simulation sim, int seed) : IEventHandler
    {
        private readonly Random _random = new(seed);

        public void OnEvent(int kind, int a, long b) => sim.Schedule(sim.Now + _random.Next(1000), this, kind, a, b);
    }

    // 1000 handlers, each rescheduling itself: the event loop alone.
    private static double EventLoop(int n)
    {
        var sim = new Simulation();
        for (var i = 0; i < 1000; i++)
            sim.Schedule(i, new Ticker(sim, i), 0);
        var stopwatch = Stopwatch.StartNew();
        while (sim.EventsProcessed < n && sim.Step())
        {
        }
        return sim.EventsProcessed / stopwatch.Elapsed.TotalSeconds;
    }

    private sealed class FlowStarter(Simulation sim, IFlowNetwork net, int channels, int seed) : IEventHandler, IFlowListener
    {
        private readonly Random _random = new(seed);
        private readonly int[][] _paths = [.. Enumerable.Range(0, 16).Select(i => new[] { i % channels, (i * 7 + seed) % channels })];

        public long Completed { get; private set; }

        public void OnEvent(int kind, int a, long b) =>
            net.Start(_paths[_random.Next(_paths.Length)], 500, _random.Next(1 << 16, 1 << 22), this, 0);

        public void OnFlowCompleted(int flow, long tag)
        {
            Completed++;
            sim.Schedule(sim.Now + _random.Next(10_000), this, 0);
        }
    }

    // 64 independent clients over 256 channels, each starting a flow a little after its last one completed: every event
    // is a start or the network's own (activation, reallocation, completion).
    private static (double Events, double Flows) FlowEvents(int n, Func<Simulation, IFlowNetwork> network)
    {
        var sim = new Simulation();
        var net = network(sim);
        var starters = Enumerable.Range(0, 64).Select(i => new FlowStarter(sim, net, 256, i)).ToList();
        for (var i = 0; i < starters.Count; i++)
            sim.Schedule(i, starters[i], 0);
        var stopwatch = Stopwatch.StartNew();
        while (sim.EventsProcessed < n && sim.Step())
        {
        }
        var seconds = stopwatch.Elapsed.TotalSeconds;
        return (sim.EventsProcessed / seconds, starters.Sum(s => s.Completed) / seconds);
    }

    private static void Scale(int tokens, Sharing sharing, long quantum, double queueRate, CancellationToken cancellationToken)
    {
        var root = FindRoot();
        var topology = TopologyLoader.LoadFile(Path.Combine(root, "topologies", "rdma-1024.yaml"));
        var workload = WorkloadLoader.LoadFile(Path.Combine(root, "topologies", "workloads", "moe32x64-synthetic.yaml"), topology)
            with { DecodeTokens = tokens, Sharing = sharing, RateQuantumNs = quantum };
        Console.WriteLine($"scale: {workload.Engines.Count} engines on {topology.Name} ({topology.Nodes.Count} nodes, {topology.Links.Count} links), " +
            $"{workload.Model.NumHiddenLayers} layers x {workload.Model.NumLocalExperts} experts, {tokens} tokens each, " +
            (sharing == Sharing.Fifo ? "links first come, first served (fifo)" : $"max-min sharing, rate quantum {Units.FormatDuration(quantum)}"));
        var last = Stopwatch.StartNew();
        var result = SimRunner.Run(topology, workload, new InlineProgress<double>(p =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (last.Elapsed.TotalSeconds >= 10)
            {
                Console.WriteLine($"  {p:P0}");
                last.Restart();
            }
        }));
        Console.WriteLine($"  {result.Tokens:N0} tokens in {result.WallSeconds:0.0} s wall on {result.Threads} thread{(result.Threads == 1 ? "" : "s")} ({result.Events:N0} events, {result.Events / result.WallSeconds:N0}/s); " +
            $"simulated {Units.FormatDuration(result.MakespanNs)}, {result.TotalTokensPerSecond:0} tokens/s, hit rate {result.HitRate:P1}, busiest link {result.Channels.FirstOrDefault()?.Name} at {result.Channels.FirstOrDefault()?.Utilisation:P0}");
        var recomputations = sharing == Sharing.Fifo ? ""
            : $"{result.Reallocations:N0} share recomputations over {result.FlowsReallocated / (double)Math.Max(1, result.Reallocations):0.0} flows each " +
                $"({result.Refills:N0} re-fills, {result.CascadedChanges:N0} local changes that other groups gave way to); ";
        Console.WriteLine($"  {recomputations}{result.WallSeconds / Math.Max(1, tokens):0.000} s per token step of all engines; {result.WallSeconds / 60 * 1000 / Math.Max(1, tokens):0.0}x the 60 s target for 1,000 tokens");
        Console.WriteLine($"  the bare queue alone, at the raw push+pop rate above, would take {result.Events / queueRate:0.0} s of it for these events " +
            $"({result.Events / queueRate / result.WallSeconds:P0}); the rest is the sharing, the pager and the routing");
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "topologies", "rdma-1024.yaml")))
                return dir.FullName;
        }
        var cwd = Directory.GetCurrentDirectory();
        return File.Exists(Path.Combine(cwd, "topologies", "rdma-1024.yaml"))
            ? cwd
            : throw new Fabric.Common.FabricException("Cannot find topologies/rdma-1024.yaml above the benchmark or the current directory.");
    }
}
