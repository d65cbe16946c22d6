using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Pool.Server.Bank;
using Fabric.Pool.Server.Serving;
using Fabric.Transport;
using Fabric.Transport.Shm;

namespace Fabric.Pool.Tests;

/// <summary>
/// The protocol's reader against a real bank served in this process over tcp (loopback) and shm: verified reads,
/// and no allocation per read once warm. Allocation is counted for the whole process, so these run alone and the
/// figure is the least of several windows (a stray allocation by the test runner shows in one window, not in all).
/// </summary>
[Collection(nameof(PoolReaderTests))]
public sealed class PoolReaderTests : IClassFixture<TinyModelFixture>
{
    private readonly TinyModelFixture _model;

    public PoolReaderTests(TinyModelFixture model) => _model = model;

    [Theory]
    [InlineData("tcp")]
    [InlineData("shm")]
    public async Task ReadExpert_ReturnsTheBank_AndAllocatesNothingPerRead(string transport)
    {
        var shmPath = $"/dev/shm/fabric-test-reader-{Guid.NewGuid():N}";
        using var bank = ExpertBank.Load(Checkpoint.Open(_model.Path), transport == "shm"
            ? new BankOptions { CreateStore = specs => new ShmRegionStore(shmPath, specs) }
            : null);
        var listen = FabricEndpoint.Parse(transport == "shm" ? $"shm://{shmPath}" : "tcp://127.0.0.1:0");
        var handler = new PoolControlHandler(bank.Catalog, null);
        await using var server = await FabricServers.StartAsync(listen, bank.Store, new FabricServerOptions { ControlHandler = handler, Authorize = handler.Authorize });
        await using var reader = await PoolReader.ConnectAsync([server.Endpoint], token: null);
        var experts = bank.Catalog.Experts;
        using var destination = new NativeBuffer(experts.Max(e => e.Length));

        foreach (var e in experts)
        {
            Assert.Equal(e.Length, await reader.ReadExpertAsync(e.Layer, e.Expert, destination.Memory));
            Assert.Equal(RegionBytes(bank.Store, e.RegionId, e.Offset, e.Length), destination.Span[..(int)e.Length].ToArray());
        }

        async Task RunAsync(int rounds)
        {
            for (var round = 0; round < rounds; round++)
            {
                var e = experts[round % experts.Length];
                await reader.ReadExpertAsync(e.Layer, e.Expert, destination.Memory);
            }
        }

        await RunAsync(200);
        var fewest = double.MaxValue;
        for (var window = 0; window < 5; window++)
        {
            var before = GC.GetTotalAllocatedBytes(precise: true);
            await RunAsync(500);
            fewest = Math.Min(fewest, (GC.GetTotalAllocatedBytes(precise: true) - before) / 500.0);
        }
        Assert.True(fewest < 16, $"{transport}: {fewest:0.0} bytes allocated per verified read");
        Assert.Equal(0, reader.CorruptBlocks);
        Assert.Equal(0, reader.Retries);
    }

    private static byte[] RegionBytes(RegionStore store, uint region, long offset, long length) =>
        store.Find(region)!.Slice(offset, checked((int)length)).ToArray();
}

/// <summary>Allocation is counted for the whole process, so these tests run alone.</summary>
[CollectionDefinition(nameof(PoolReaderTests), DisableParallelization = true)]
public sealed class PoolReaderTestsCollection;
