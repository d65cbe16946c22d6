using CsCheck;
using Fabric.Sim.Clock;
using Fabric.Sim.Compute;
using Fabric.Sim.Network;
using Fabric.Sim.Network.MaxMin;
using Fabric.Sim.Routing;
using Fabric.Sim.Topology;

namespace Fabric.Sim.Tests;

public sealed class FlowNetworkTests
{
    private sealed class Recorder : IFlowListener
    {
        public List<(long Tag, long At)> Done { get; } = [];
        public Simulation? Sim { get; set; }

        public void OnFlowCompleted(int flow, long tag) => Done.Add((tag, Sim!.Now));
    }

    private static (Simulation Sim, FlowNetwork Net, Recorder Rec) Make(params double[] capacities)
    {
        var sim = new Simulation();
        var rec = new Recorder { Sim = sim };
        return (sim, new FlowNetwork(sim, capacities), rec);
    }

    [Fact]
    public void OneFlow_OneLink_TakesLatencyPlusSizeOverBandwidth()
    {
        var (sim, net, rec) = Make(10e9);
        net.Start([0], latencyNs: 500, bytes: 1_000_000, rec, tag: 7);
        sim.Run();
        Assert.Equal([(7L, 500L + 100_000L)], rec.Done);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(10)]
    public void NFlows_SharingALink_EachGetOneNth(int n)
    {
        var (sim, net, rec) = Make(10e9);
        var ids = Enumerable.Range(0, n).Select(i => net.Start([0], 0, 1_000_000, rec, i)).ToList();
        sim.Run(1);
        foreach (var id in ids)
            Assert.Equal(10e9 / n, net.RateOf(id), 1);
        sim.Run();
        Assert.All(rec.Done, d => Assert.Equal(100_000L * n, d.At));
    }

    [Fact]
    public void FlowCrossingTwoLinks_GetsTheNarrower()
    {
        var (sim, net, rec) = Make(10e9, 5e9);
        net.Start([0, 1], latencyNs: 300, bytes: 1_000_000, rec, 1);
        sim.Run();
        Assert.Equal(300 + 200_000, rec.Done.Single().At);
    }

    [Fact]
    public void FlowLeavingAChannelItCrossesTwice_LeavesTheOthersConsistent()
    {
        // A counts twice on channel 0, so all three start at 10/4 GB/s; when A leaves, B and C split channel 0.
        var (sim, net, rec) = Make(10e9, 10e9);
        net.Start([0, 0], 0, 100_000, rec, 1);
        var b = net.Start([0], 0, 1_000_000, rec, 2);
        var c = net.Start([1, 0], 0, 1_000_000, rec, 3);
        sim.Run(1);
        Assert.Equal(2.5e9, net.RateOf(b), 1);
        sim.Run(40_001);
        Assert.Equal([(1L, 40_000L)], rec.Done);
        Assert.Equal(5e9, net.RateOf(b), 1);
        Assert.Equal(5e9, net.RateOf(c), 1);
        sim.Run();
        Assert.Equal(3, rec.Done.Count);
        Assert.Equal(0, net.LiveFlows);
    }

    [Fact]
    public void FlowLeavingBeforeADoubleCrosser_KeepsItsPositionsRight()
    {
        // B leaves first and the double-crossing A moves into its place; A then runs alone at 10/2 GB/s.
        var (sim, net, rec) = Make(10e9);
        net.Start([0], 0, 100_000, rec, 1);
        net.Start([0, 0], 0, 1_000_000, rec, 2);
        sim.Run();
        Assert.Equal([(1L, 30_000L), (2L, 210_000L)], rec.Done);
        Assert.Equal(0, net.LiveFlows);
    }

    [Fact]
    public void MaxMinFairness_GivesLeftoverToTheUnconstrainedFlow()
    {
        // A crosses a 10 and a 2 GB/s channel, B only the 10: A is held to 2 by its bottleneck, B takes the other 8.
        var (sim, net, rec) = Make(10e9, 2e9);
        var a = net.Start([0, 1], 0, 1_000_000, rec, 1);
        var b = net.Start([0], 0, 8_000_000, rec, 2);
        sim.Run(1);
        Assert.Equal(2e9, net.RateOf(a), 1);
        Assert.Equal(8e9, net.RateOf(b), 1);
        sim.Run();
        // B: 4 MB at 8 B/ns while A lasts (500 us), the other 4 MB alone at 10 B/ns (400 us).
        Assert.Equal([(1L, 500_000L), (2L, 900_000L)], rec.Done);
    }

    [Fact]
    public void FlowJoiningLater_SlowsTheFirstOnlyFromThen()
    {
        // First runs alone at 10 B/ns for 50 us (500 KB), then both share 5 B/ns: first's other 500 KB take 100 us.
        var (sim, net, rec) = Make(10e9);
        net.Start([0], 0, 1_000_000, rec, 1);
        net.Start([0], 50_000, 1_000_000, rec, 2);
        sim.Run();
        Assert.Equal(150_000, rec.Done.Single(d => d.Tag == 1).At);
        // Second: 500 KB shared (100 us), the rest alone at 10 B/ns (50 us).
        Assert.Equal(200_000, rec.Done.Single(d => d.Tag == 2).At);
    }

    [Fact]
    public void IndependentComponents_AreNotRecomputedTogether()
    {
        var (sim, net, rec) = Make(10e9, 10e9);
        net.Start([0], 0, 1_000_000, rec, 1);
        sim.Run(1);
        var before = net.FlowsReallocated;
        net.Start([1], 0, 1_000_000, rec, 2);
        sim.Run(2);
        Assert.Equal(1, net.FlowsReallocated - before);
    }

    private static List<(long Tag, long At)> RandomRun(int seed)
    {
        var random = new Random(seed);
        var (sim, net, rec) = Make(10e9, 4e9, 25e9, 1e9);
        for (var i = 0; i < 200; i++)
        {
            var path = Enumerable.Range(0, 4).Where(_ => random.Next(2) == 0).DefaultIfEmpty(0).ToArray();
            var start = random.Next(0, 100_000);
            sim.Schedule(start, new Starter(net, path, random.Next(1, 1_000_000), rec, i), 0);
        }
        sim.Run();
        return rec.Done;
    }

    private sealed class Starter(FlowNetwork net, int[] path, long bytes, IFlowListener listener, long tag) : IEventHandler
    {
        public void OnEvent(int kind, int a, long b) => net.Start(path, 100, bytes, listener, tag);
    }

    [Fact]
    public void EventOrder_IsDeterministicForASeed()
    {
        var first = RandomRun(42);
        Assert.Equal(200, first.Count);
        Assert.Equal(first, RandomRun(42));
        Assert.NotEqual(first, RandomRun(43));
    }

    [Fact]
    public void EveryFlow_FinishesNoSoonerThanAloneAndNoLaterThanSerialised()
    {
        Gen.Select(Gen.Int[1, 30], Gen.Int[0, 1000]).Sample((n, seed) =>
        {
            var random = new Random(seed);
            double[] caps = [10e9, 3e9, 7e9];
            var (sim, net, rec) = Make(caps);
            var flows = new List<(int[] Path, long Bytes)>();
            for (var i = 0; i < n; i++)
            {
                var path = Enumerable.Range(0, 3).Where(_ => random.Next(2) == 0).DefaultIfEmpty(1).ToArray();
                var bytes = (long)random.Next(1000, 1_000_000);
                flows.Add((path, bytes));
                net.Start(path, 10, bytes, rec, i);
            }
            sim.Run();
            var total = flows.Sum(f => f.Bytes) / caps.Min() * 1e9;
            foreach (var (tag, at) in rec.Done)
            {
                var (path, bytes) = flows[(int)tag];
                var alone = 10 + bytes / path.Min(c => caps[c]) * 1e9;
                Assert.True(at >= alone - 1, $"flow {tag} finished at {at}, before its solo time {alone}");
                Assert.True(at <= 10 + total + n, $"flow {tag} finished at {at}, after every byte could have gone serially");
            }
            Assert.Equal(n, rec.Done.Count);
        }, iter: 100);
    }

    [Fact]
    public void QuantisedShares_StayCloseToExact()
    {
        static List<(long Tag, long At)> Run(long quantum)
        {
            var sim = new Simulation();
            var rec = new Recorder { Sim = sim };
            var net = new FlowNetwork(sim, [10e9, 4e9], quantum);
            for (var i = 0; i < 50; i++)
                sim.Schedule(i * 20_000, new Starter(net, i % 3 == 0 ? [0, 1] : [0], 2_000_000, rec, i), 0);
            sim.Run();
            return [.. rec.Done.OrderBy(d => d.Tag)];
        }
        var exact = Run(0);
        var coarse = Run(5_000);
        Assert.Equal(50, coarse.Count);
        for (var i = 0; i < 50; i++)
            Assert.InRange(coarse[i].At, exact[i].At * 0.95, exact[i].At * 1.05 + 10_000);
    }

    [Fact]
    public void Router_TakesLowestLatencyPath_AndNeverForwardsThroughAGpu()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "h100-node-dram.yaml"));
        var router = new Router(t);
        var route = router.Find(t.Get("node0.dram1").Id, t.Get("node0.gpu0").Id)!;
        var names = route.Channels.Select(t.DescribeChannel).ToList();
        Assert.Equal(["node0.dram1 → node0.cpu1", "node0.cpu1 → node0.cpu0", "node0.cpu0 → node0.pcie0", "node0.pcie0 → node0.gpu0"], names);
        Assert.Equal(90 + 130 + 150 + 150, route.LatencyNs);
        Assert.Equal(Pcie.BytesPerSecond(5, 16) * 0.85, route.BottleneckBandwidth, 1);
        Assert.Same(route, router.Find(t.Get("node0.dram1").Id, t.Get("node0.gpu0").Id));
    }

    [Fact]
    public void Roofline_TakesTheSlowerOfComputeAndMemory()
    {
        var gpu = new TopologyNode(0, "g", NodeKind.Gpu, 0, MemoryBandwidth: 1e12, PeakFlops: 1e15, IsPool: false);
        Assert.Equal(1_000, Roofline.TimeNs(gpu, flops: 1e9, bytes: 1e3));
        Assert.Equal(2_000, Roofline.TimeNs(gpu, flops: 1e3, bytes: 2e6));
    }
}
