using Fabric.Sim.Clock;
using Fabric.Sim.Network;
using Fabric.Sim.Network.MaxMin;
using Fabric.Sim.Routing;
using Fabric.Sim.Topology;

namespace Fabric.Sim.Tests;

public sealed class RedundantChannelsTests
{
    [Fact]
    public void WiderHopsCarryingTheSameRoutes_AsANarrowerOne_AreDropped()
    {
        // DRAM (307) -> PCIe (53.5) -> NIC (50): only the NIC can ever be full.
        int[] route = [0, 1, 2];
        var pruned = RedundantChannels.Prune([route], [307, 53.5, 50]);
        Assert.Equal([2], pruned[route]);
    }

    [Fact]
    public void AChannelOtherRoutesAlsoCross_IsKept()
    {
        // Channel 0 carries both routes; the narrower 2 and 3 each carry one, so none implies another.
        int[] a = [0, 2];
        int[] b = [0, 3];
        var pruned = RedundantChannels.Prune([a, b], [50, 0, 40, 40]);
        Assert.Equal([0, 2], pruned[a]);
        Assert.Equal([0, 3], pruned[b]);
    }

    [Fact]
    public void OfTwoEqualChannelsWithTheSameRoutes_TheLowerIdStays()
    {
        int[] route = [5, 4];
        var pruned = RedundantChannels.Prune([route], [0, 0, 0, 0, 10, 10]);
        Assert.Equal([4], pruned[route]);
    }

    [Fact]
    public void AChannelCrossedTwice_IsNotImpliedByOneCrossedOnce()
    {
        int[] route = [0, 1, 0];
        var pruned = RedundantChannels.Prune([route], [10, 10]);
        Assert.Equal([0, 0], pruned[route]);
    }

    [Fact]
    public void DeclaredRoutes_GiveTheSameCompletionsAsTheFullPaths()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "h100-node-cxl.yaml"));
        var router = new Router(t);
        var pools = t.Nodes.Where(n => n.IsPool).ToList();
        var gpus = t.Nodes.Where(n => n.Kind == NodeKind.Gpu).ToList();
        var routes = pools.SelectMany(p => gpus.Select(g => router.Find(p.Id, g.Id)!.Channels)).ToList();
        var capacities = new double[t.ChannelCount];
        for (var c = 0; c < capacities.Length; c++)
            capacities[c] = t.Links[c / 2].Bandwidth;
        var sharing = RedundantChannels.Prune(routes, capacities);
        Assert.Contains(routes, r => sharing[r].Length < r.Length);

        List<(long Tag, long At)> Run(bool declare)
        {
            var sim = new Simulation();
            var net = new FlowNetwork(sim, capacities);
            if (declare)
                net.DeclareRoutes(routes);
            var done = new Done(sim);
            var random = new Random(11);
            for (var i = 0; i < 400; i++)
                sim.Schedule(random.Next(0, 2_000_000), new Starter(net, routes[random.Next(routes.Count)], random.Next(100_000, 50_000_000), done, i), 0);
            sim.Run();
            return done.List;
        }

        var full = Run(declare: false);
        var pruned = Run(declare: true);
        Assert.Equal(400, pruned.Count);
        Assert.Equal(full.Select(d => d.Tag), pruned.Select(d => d.Tag));
        for (var i = 0; i < full.Count; i++)
            Assert.InRange(pruned[i].At, full[i].At - 2, full[i].At + 2);
    }

    [Fact]
    public void AFlowOnAnUndeclaredRoute_IsRefused()
    {
        var sim = new Simulation();
        var net = new FlowNetwork(sim, [10e9, 10e9]);
        net.DeclareRoutes([[0]]);
        var error = Assert.Throws<InvalidOperationException>(() => net.Start([1], 0, 10, new Done(sim), 0));
        Assert.Contains("not declared", error.Message);
    }

    private sealed class Done(Simulation sim) : IFlowListener
    {
        public List<(long Tag, long At)> List { get; } = [];

        public void OnFlowCompleted(int flow, long tag) => List.Add((tag, sim.Now));
    }

    private sealed class Starter(FlowNetwork net, int[] route, long bytes, IFlowListener listener, long tag) : IEventHandler
    {
        public void OnEvent(int kind, int a, long b) => net.Start(route, 500, bytes, listener, tag);
    }
}
