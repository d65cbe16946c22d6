using CsCheck;
using Fabric.Sim.Core;

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
            for (long t = 0; sim.Pending > 0; t += 2_500)
            {
                sim.Run(t);
                var moving = tracker.Live.Where(f => net.IsTransferring(f.Key)).ToDictionary(f => f.Key, f => f.Value);
                var expected = Reference(moving, capacity);
                foreach (var (id, want) in expected)
                    Assert.True(Math.Abs(net.RateOf(id) - want) <= 1e-6 * want + 1, $"at {t} ns flow {id} moves at {net.RateOf(id):E6} B/s, max-min says {want:E6}");
            }
            Assert.Equal(flows, tracker.Completed);
        }, iter: 200);
    }
}
