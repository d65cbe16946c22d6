using Fabric.Model;
using Fabric.Pool.Server.Bank;
using Fabric.Pool.Server.Serving;
using Fabric.Transport;

namespace Fabric.Engine.Tests.Runtime;

/// <summary>A real pool bank served over a real tcp socket on loopback, in this process (so a test can kill it at a chosen moment).</summary>
internal sealed class InProcessPool : IAsyncDisposable
{
    private IFabricServer? _server;

    private InProcessPool(ExpertBank bank, IFabricServer server)
    {
        Bank = bank;
        _server = server;
        Endpoint = server.Endpoint;
    }

    public ExpertBank Bank { get; }

    public FabricEndpoint Endpoint { get; }

    public static async Task<InProcessPool> StartAsync(string modelDirectory, string listen = "tcp://127.0.0.1:0")
    {
        var bank = ExpertBank.Load(Checkpoint.Open(modelDirectory));
        var server = await StartServerAsync(bank, FabricEndpoint.Parse(listen));
        return new InProcessPool(bank, server);
    }

    /// <summary>Kills the server: every connection drops, new ones are refused.</summary>
    public async Task StopAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        _server = null;
    }

    /// <summary>Serves again on the same endpoint (the pool came back).</summary>
    public async Task RestartAsync() => _server = await StartServerAsync(Bank, Endpoint);

    /// <summary>Flips one byte inside expert (layer, expert)'s block: the pool now serves a corrupt copy.</summary>
    public unsafe void Corrupt(int layer, int expert)
    {
        var e = Bank.Catalog.GetExpert(layer, expert);
        var region = Bank.Store.Regions.First(r => r.Id == e.RegionId);
        region.Slice(e.Offset + 100, 1)[0] ^= 0x5A;
    }

    private static async Task<IFabricServer> StartServerAsync(ExpertBank bank, FabricEndpoint listen)
    {
        var handler = new PoolControlHandler(bank.Catalog, null);
        return await FabricServers.StartAsync(listen, bank.Store,
            new FabricServerOptions { ControlHandler = handler, Authorize = handler.Authorize });
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Bank.Dispose();
    }
}
