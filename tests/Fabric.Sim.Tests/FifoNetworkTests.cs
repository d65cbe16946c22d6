using CsCheck;
using Fabric.Sim.Clock;
using Fabric.Sim.Network;
using Fabric.Sim.Network.Fifo;
using Fabric.Sim.Network.MaxMin;

namespace Fabric.Sim.Tests;

public sealed class FifoNetworkTests
{
    private sealed class Recorder(Simulation sim) : IFlowListener
    {
        public List<(long Tag, long At)> Done { get; } = [];

        public void OnFlowCompleted(int flow, long tag) => Done.Add((tag, sim.Now));
    }

    private sealed class Starter(IFlowNetwork net, int[] route, long latencyNs, long bytes, IFlowListener listener, long tag) : IEventHandler
    {
        public void OnEvent(int kind, int a, long b) => net.Start(route, latencyNs, bytes, listener, tag);
    }

    [Fact]
    public void OneTransfer_OneLink_TakesLatencyPlusSizeOverBandwidth()
    {
        var sim = new Simulation();
        var rec = new Recorder(sim);
        new FifoNetwork(sim, [10e9]).Start([0], latencyNs: 500, bytes: 1_000_000, rec, tag: 7);
        sim.Run();
        Assert.Equal([(7L, 500L + 100_000L)], rec.Done);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(10)]
    public void NTransfersOnALink_AreServedInTurn_AndTheLastEndsWhenMaxMinsWould(int n)
    {
        var sim = new Simulation();
        var rec = new Recorder(sim);
        var net = new FifoNetwork(sim, [10e9]);
        for (var i = 0; i < n; i++)
            net.Start([0], 0, 1_000_000, rec, i);
        Assert.Equal(n, net.LiveFlows);
        sim.Run();
        Assert.Equal(Enumerable.Range(0, n).Select(i => ((long)i, 100_000L * (i + 1))), rec.Done);
        Assert.Equal(0, net.LiveFlows);
        Assert.Equal(n * 1e6, net.BytesCarried[0]);
    }

    [Fact]
    public void ServingAPathInParts_GivesWhatBookingItWholeGives()
    {
        // Each channel serves its transfers in the order they reach it, whatever the others do: serving every transfer
        // on [0, 1] now and on [2] later, in the same order, completes each when booking [0, 1, 2] at once would.
        var (whole, parts) = (new FifoNetwork(new Simulation(), [10e9, 4e9, 6e9]), new FifoNetwork(new Simulation(), [10e9, 4e9, 6e9]));
        var transfers = Enumerable.Range(0, 12).Select(i => (At: 1_000L * i, Latency: 300L * (i % 3), Bytes: 200_000L * (1 + (i % 5)))).ToList();
        var expected = transfers.Select(t => whole.Book([0, 1, 2], t.At, t.Latency, t.Bytes)).ToList();
        var firstParts = transfers.Select(t => parts.Serve([0, 1], t.At + t.Latency, t.Bytes)).ToList();
        var actual = transfers.Select((t, i) => parts.Complete(Math.Max(firstParts[i], parts.Serve([2], t.At + t.Latency, t.Bytes)))).ToList();
        Assert.Equal(expected, actual);
        Assert.Equal(whole.LastCompletionNs, parts.LastCompletionNs);
        Assert.Equal(whole.BytesCarried.ToArray(), parts.BytesCarried.ToArray());
        // A path with no channel left to serve is done when the transfer arrives.
        Assert.Equal(1234.5, parts.Serve([], 1234.5, 1_000));
    }

    [Fact]
    public void Booking_GivesTheCompletionAStartedTransferHearsOf_WithoutAnEvent()
    {
        var (sim, booked) = (new Simulation(), new Simulation());
        var rec = new Recorder(sim);
        var (net, bookNet) = (new FifoNetwork(sim, [10e9, 5e9]), new FifoNetwork(booked, [10e9, 5e9]));
        int[][] routes = [[0], [0, 1], [1]];
        var times = new List<long>();
        for (var i = 0; i < 9; i++)
        {
            net.Start(routes[i % 3], latencyNs: 100 * i, bytes: 250_000 * (1 + (i % 4)), rec, i);
            times.Add(bookNet.Book(routes[i % 3], latencyNs: 100 * i, bytes: 250_000 * (1 + (i % 4))));
        }
        Assert.Equal(0, booked.Pending);
        sim.Run();
        Assert.Equal(rec.Done.OrderBy(d => d.Tag).Select(d => d.At), times);
        Assert.Equal(net.BytesCarried.ToArray(), bookNet.BytesCarried.ToArray());
        Assert.Equal(net.LastCompletionNs, bookNet.LastCompletionNs);
    }

    [Fact]
    public void TransferCrossingTwoLinks_TakesTheNarrower_AndCountsOnBoth()
    {
        var sim = new Simulation();
        var rec = new Recorder(sim);
        var net = new FifoNetwork(sim, [10e9, 5e9]);
        net.Start([0, 1], latencyNs: 300, bytes: 1_000_000, rec, 1);
        sim.Run();
        Assert.Equal(300 + 200_000, rec.Done.Single().At);
        Assert.Equal([1e6, 1e6], net.BytesCarried.ToArray());
        Assert.Equal(300 + 200_000, net.LastCompletionNs);
    }

    [Fact]
    public void ATransferReachingAnIdleLink_IsNotHeldBackByEarlierWork()
    {
        var sim = new Simulation();
        var rec = new Recorder(sim);
        var net = new FifoNetwork(sim, [10e9]);
        net.Start([0], 0, 1_000_000, rec, 1);
        sim.Schedule(250_000, new Starter(net, [0], 0, 1_000_000, rec, 2), 0);
        sim.Run();
        Assert.Equal([(1L, 100_000L), (2L, 350_000L)], rec.Done);
    }

    [Fact]
    public void ATransferWaitsOnlyOnTheLinksItShares()
    {
        // B shares link 1 with A only: it waits for A there, and C, alone on link 2, does not wait at all.
        var sim = new Simulation();
        var rec = new Recorder(sim);
        var net = new FifoNetwork(sim, [10e9, 10e9, 10e9]);
        net.Start([0, 1], 0, 1_000_000, rec, 1);
        net.Start([1], 0, 1_000_000, rec, 2);
        net.Start([2], 0, 1_000_000, rec, 3);
        sim.Run();
        Assert.Equal([(1L, 100_000L), (3L, 100_000L), (2L, 200_000L)], rec.Done);
    }

    // On one link, serving in turn and sharing fairly are both work-conserving: the link is busy over the same
    // stretches and moves the same bytes, so the last transfer of every busy stretch ends at the same instant.
    [Fact]
    public void OnOneLink_TheLastCompletionIsMaxMinsForAnyArrivals()
    {
        var arrivals = Gen.Select(Gen.Long[0, 2_000_000], Gen.Long[1_000, 20_000_000]).Array[1, 40];
        arrivals.Sample(transfers =>
        {
            long LastCompletion(Func<Simulation, IFlowNetwork> make)
            {
                var sim = new Simulation();
                var net = make(sim);
                var rec = new Recorder(sim);
                for (var i = 0; i < transfers.Length; i++)
                    sim.Schedule(transfers[i].Item1, new Starter(net, [0], 100, transfers[i].Item2, rec, i), 0);
                sim.Run();
                Assert.Equal(transfers.Length, rec.Done.Count);
                return rec.Done.Max(d => d.At);
            }

            var fifo = LastCompletion(sim => new FifoNetwork(sim, [10e9]));
            var maxMin = LastCompletion(sim => new FlowNetwork(sim, [10e9]));
            Assert.InRange(fifo, maxMin - transfers.Length - 1, maxMin + transfers.Length + 1);
        }, iter: 200);
    }
}
