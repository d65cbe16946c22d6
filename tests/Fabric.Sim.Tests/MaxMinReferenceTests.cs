using CsCheck;
using Fabric.Sim.Clock;
using Fabric.Sim.Network;
using Fabric.Sim.Network.MaxMin;

namespace Fabric.Sim.Tests;

/// <summary>
/// The network's incremental shares against max-min fairness computed from scratch (textbook progressive filling
/// over every transferring flow) at many instants of random runs.
/// </summary>
public sealed class MaxMinReferenceTests
{
    private sealed class Tracker : IFlowListener
    {
        public Dictionary<int, int[]> Live { get; } = [];
        public int Completed { get; private set; }

        public void OnFlowCompleted(int flow, long tag)
        {
            Live.Remove(flow);
            Completed++;
        }
    }

    private sealed class Starter(FlowNetwork net, Tracker tracker, int[] path, long bytes, long latency) : IEventHandler
    {
        public void OnEvent(int kind, int a, long b) => tracker.Live[net.Start(path, latency, bytes, tracker, 0)] = path;
    }

    // Bytes/s per flow: repeatedly the channel with the smallest equal share fixes every unfixed flow through it.
    private static Dictionary<int, double> Reference(IReadOnlyDictionary<int, int[]> flows, double[] capacity)
    {
        var rate = new Dictionary<int, double>();
        var residual = (double[])capacity.Clone();
        while (rate.Count < flows.Count)
        {
            var best = -1;
            var bestShare = double.MaxValue;
            for (var c = 0; c < capacity.Length; c++)
            {
                var n = flows.Where(f => !rate.ContainsKey(f.Key)).Sum(f => f.Value.Count(x => x == c));
                if (n > 0 && residual[c] / n < bestShare)
                {
                    bestShare = residual[c] / n;
                    best = c;
                }
            }
            foreach (var (id, path) in flows.Where(f => !rate.ContainsKey(f.Key) && f.Value.Contains(best)).ToList())
            {
                rate[id] = bestShare;
                foreach (var c in path)
                    residual[c] -= bestShare;
            }
        }
        return rate;
    }

    [Fact]
    public void IncrementalShares_MatchProgressiveFillingFromScratch()
    {
        Gen.Select(Gen.Int[2, 12], Gen.Int[5, 60], Gen.Int[0, 100_000]).Sample((channels, flows, seed) =>
        {
            var random = new Random(seed);
            var capacity = Enumerable.Range(0, channels).Select(_ => random.Next(1, 50) * 1e9).ToArray();
            var sim = new Simulation();
            var net = new FlowNetwork(sim, capacity);
            var tracker = new Tracker();
            for (var i = 0; i < flows; i++)
            {
                // Paths of 1-4 channels, some crossing one channel twice; bytes and start times spread so flows overlap.
                var path = Enumerable.Range(0, random.Next(1, 5)).Select(_ => random.Next(channels)).ToArray();
                sim.Schedule(random.Next(0, 200_000), new Starter(net, tracker, path, random.Next(1_000, 2_000_000), random.Next(0, 500)), 0);
            }
            RunMatchingReference(sim, net, tracker, capacity);
            Assert.Equal(flows, tracker.Completed);
        }, iter: 200, threads: 1);
    }

    // The shape of rdma-1024.yaml: every flow crosses one memory-NIC link and one GPU-NIC link of equal width, the
    // memory NICs chosen with skew. Flows from lightly loaded memory NICs saturate their GPU's link, so joins and
    // leaves at a busy memory NIC make those GPU links' groups give way (ShareCascade).
    [Fact]
    public void IncrementalShares_MatchFromScratch_WhenGpuLinksSaturate()
    {
        var cascaded = 0L;
        Gen.Select(Gen.Int[2, 6], Gen.Int[2, 8], Gen.Int[0, 100_000]).Sample((memoryNics, gpus, seed) =>
        {
            var random = new Random(seed);
            var capacity = Enumerable.Repeat(50e9, memoryNics + gpus).ToArray();
            var sim = new Simulation();
            var net = new FlowNetwork(sim, capacity);
            var tracker = new Tracker();
            var flows = random.Next(10, 80);
            for (var i = 0; i < flows; i++)
            {
                var memory = (int)(memoryNics * Math.Pow(random.NextDouble(), 3));
                int[] path = [memory, memoryNics + random.Next(gpus)];
                sim.Schedule(random.Next(0, 200_000), new Starter(net, tracker, path, random.Next(1_000, 2_000_000), random.Next(0, 500)), 0);
            }
            RunMatchingReference(sim, net, tracker, capacity);
            Assert.Equal(flows, tracker.Completed);
            cascaded += net.CascadedChanges;
        }, iter: 200, threads: 1);
        Assert.True(cascaded > 100, $"only {cascaded} changes took the cascade: the test no longer covers it");
    }

    // Runs the simulation to the end, checking every transferring flow's rate against the reference every 2.5 us.
    private static void RunMatchingReference(Simulation sim, FlowNetwork net, Tracker tracker, double[] capacity)
    {
        for (long t = 0; sim.Pending > 0; t += 2_500)
        {
            sim.Run(t);
            var moving = tracker.Live.Where(f => net.IsTransferring(f.Key)).ToDictionary(f => f.Key, f => f.Value);
            var expected = Reference(moving, capacity);
            foreach (var (id, want) in expected)
                Assert.True(Math.Abs(net.RateOf(id) - want) <= 1e-6 * want + 1, $"at {t} ns flow {id} moves at {net.RateOf(id):E6} B/s, max-min says {want:E6}");
        }
    }

    private sealed class Timer(Simulation sim) : IFlowListener
    {
        public Dictionary<long, long> DoneAt { get; } = [];

        public void OnFlowCompleted(int flow, long tag) => DoneAt[tag] = sim.Now;
    }

    private sealed class TaggedStarter(FlowNetwork net, IFlowListener listener, int[] path, long bytes, long tag) : IEventHandler
    {
        public void OnEvent(int kind, int a, long b) => net.Start(path, 0, bytes, listener, tag);
    }

    // A fluid simulation from scratch: between consecutive arrivals and completions every flow moves at its max-min
    // rate; returns each flow's completion time in ns.
    private static double[] FluidReference(IReadOnlyList<(long Start, int[] Path, long Bytes)> flows, double[] capacity)
    {
        var remaining = flows.Select(f => (double)f.Bytes).ToArray();
        var done = new double[flows.Count];
        var now = 0.0;
        var live = new HashSet<int>();
        var pending = Enumerable.Range(0, flows.Count).OrderBy(i => flows[i].Start).ToList();
        while (live.Count > 0 || pending.Count > 0)
        {
            while (pending.Count > 0 && flows[pending[0]].Start <= now + 1e-9)
            {
                live.Add(pending[0]);
                pending.RemoveAt(0);
            }
            if (live.Count == 0)
            {
                now = flows[pending[0]].Start;
                continue;
            }
            var rate = Reference(live.ToDictionary(i => i, i => flows[i].Path), capacity);
            var step = live.Min(i => remaining[i] / (rate[i] / 1e9));
            if (pending.Count > 0)
                step = Math.Min(step, flows[pending[0]].Start - now);
            now += step;
            foreach (var i in live.ToList())
            {
                remaining[i] -= rate[i] / 1e9 * step;
                if (remaining[i] <= 1e-6 * flows[i].Bytes)
                {
                    done[i] = now;
                    live.Remove(i);
                }
            }
        }
        return done;
    }

    [Fact]
    public void CompletionTimes_MatchAFluidSimulationFromScratch()
    {
        Gen.Select(Gen.Int[2, 8], Gen.Int[3, 30], Gen.Int[0, 100_000]).Sample((channels, count, seed) =>
        {
            var random = new Random(seed);
            var capacity = Enumerable.Range(0, channels).Select(_ => random.Next(1, 50) * 1e9).ToArray();
            var flows = Enumerable.Range(0, count).Select(_ => (
                Start: (long)random.Next(0, 100_000),
                Path: Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(channels)).Distinct().ToArray(),
                Bytes: (long)random.Next(10_000, 2_000_000))).ToList();
            var sim = new Simulation();
            var net = new FlowNetwork(sim, capacity);
            var timer = new Timer(sim);
            for (var i = 0; i < count; i++)
                sim.Schedule(flows[i].Start, new TaggedStarter(net, timer, flows[i].Path, flows[i].Bytes, i), 0);
            sim.Run();
            var expected = FluidReference(flows, capacity);
            // Whole-ns event times and the reference's floating-point steps part by a few ns at most.
            var slack = 2 + (count * 2);
            for (var i = 0; i < count; i++)
                Assert.InRange(timer.DoneAt[i], expected[i] - slack, expected[i] + slack);
        }, iter: 200, threads: 1);
    }
}
