using Fabric.Common;
using Fabric.Transport.Conformance;
using Fabric.Transport.Host;
using Fabric.Transport.Shm;

namespace Fabric.Transport.Tests;

/// <summary>
/// The success path of a read allocates nothing per read. Measured over the whole process (the test runner allocates
/// too), so the bar is a few bytes per read: any object allocated per read would cost at least 24. See
/// <see cref="AllocationMeter"/> for why the figure is the least of several windows.
/// </summary>
[Collection(nameof(AllocationTests))]
public sealed class AllocationTests
{
    [Theory]
    [InlineData("tcp")]
    [InlineData("shm")]
    public async Task Read_SuccessPath_AllocatesNothingPerRead(string transport)
    {
        RegionSpec[] regions = [new(1, 1 << 20, 9)];
        using RegionStore store = transport == "shm" ? new ShmRegionStore($"/dev/shm/fabric-test-alloc-{Guid.NewGuid():N}", regions) : new HostRegionStore(regions);
        RegionPattern.Fill(store.Regions[0]);
        var listen = store is ShmRegionStore shm ? shm.Endpoint : FabricEndpoint.Parse("tcp://127.0.0.1:0");
        await using var server = await FabricServers.StartAsync(listen, store);
        await using var client = await FabricTransports.ConnectAsync(server.Endpoint);
        using var destination = new NativeBuffer(64 << 10);
        var requests = Enumerable.Range(0, 16).Select(i => new ReadRequest(1, 9, i * 4096, destination.Memory.Slice(i * 4096, 4096))).ToArray();

        async Task RunAsync(int rounds)
        {
            for (var round = 0; round < rounds; round++)
            {
                var a = client.ReadAsync(requests[round % 16]);
                var b = client.ReadAsync(requests[(round + 1) % 16]);
                if (await a != ReadStatus.Ok || await b != ReadStatus.Ok)
                    Assert.Fail("a read failed");
            }
        }

        var perRead = await AllocationMeter.FewestBytesPerOperationAsync(RunAsync, rounds: 4000, operationsPerRound: 2);
        Assert.True(perRead < 16, $"{transport}: {perRead:0.0} bytes allocated per read");
    }
}

/// <summary>Allocation is counted for the whole process, so these tests run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(AllocationTests), DisableParallelization = true)]
public sealed class AllocationTestsCollection;
