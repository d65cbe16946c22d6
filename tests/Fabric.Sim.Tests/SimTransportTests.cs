using Fabric.Sim.Topology;
using Fabric.Sim.Transport;
using Fabric.Transport;
using Fabric.Transport.Host;

namespace Fabric.Sim.Tests;

/// <summary>sim:// names a node of the one process-wide fabric, so these tests never run beside the conformance suite.</summary>
[Collection(SimFabricCollection.Name)]
public sealed class SimTransportTests
{
    [Fact]
    public async Task Read_CompletesWhenTheModelledFlowCompletes()
    {
        SimFabric.Register();
        await using var fabric = new SimFabric(TopologyLoader.Load(SimTransportConformanceTests.Machine, "m"), "client");
        using var store = new HostRegionStore([new RegionSpec(1, 8 << 20, 5)]);
        store.Regions[0].Slice(0, 4).Fill(0x5A);
        await using var server = fabric.StartServer("pool", store);
        await using var client = await FabricTransports.ConnectAsync("sim://pool");
        var buffer = new byte[4 << 20];
        var before = fabric.Now;
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(1, 5, 0, buffer)));
        Assert.All(buffer[..4], b => Assert.Equal(0x5A, b));
        // 2 us latency + 4 MiB at 25 GB/s.
        var expected = 2000 + (long)Math.Ceiling((4 << 20) / 25.0);
        Assert.Equal(expected, fabric.Now - before);

        // Two reads issued together share the link: both finish after twice the transfer time.
        before = fabric.Now;
        var statuses = new ReadStatus[2];
        await client.ReadBatchAsync(new[] { new ReadRequest(1, 5, 0, buffer.AsMemory(0, 2 << 20)), new ReadRequest(1, 5, 0, buffer.AsMemory(2 << 20)) }, statuses);
        Assert.Equal([ReadStatus.Ok, ReadStatus.Ok], statuses);
        Assert.InRange(fabric.Now - before, expected - 2, 2000 + (2 * (long)Math.Ceiling((2 << 20) / 25.0)));
    }

    [Fact]
    public async Task Connect_ToUnservedNode_IsOneSentence()
    {
        SimFabric.Register();
        await using var fabric = new SimFabric(TopologyLoader.Load(SimTransportConformanceTests.Machine, "m"), "client");
        var e = await Assert.ThrowsAsync<EndpointException>(async () => await FabricTransports.ConnectAsync("sim://elsewhere"));
        Assert.Equal("Nothing serves sim://elsewhere in this process.", e.Message);
        using var store = new HostRegionStore([new RegionSpec(1, 64, 5)]);
        Assert.StartsWith("Cannot serve sim://moon", Assert.Throws<EndpointException>(() => fabric.StartServer("moon", store)).Message);
    }
}
