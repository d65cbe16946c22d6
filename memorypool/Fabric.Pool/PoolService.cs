using Fabric.Pool.Server.Bank;
using Fabric.Pool.Server.Serving;
using Fabric.Transport;
using Microsoft.Extensions.Hosting;

namespace Fabric.Pool;

/// <summary>
/// The daemon's hosted service: owns the bank and the servers that export it. On stop (SIGTERM, Ctrl+C) it stops
/// every server, which lets in-flight reads finish, then releases the bank.
/// </summary>
internal sealed class PoolService : IHostedService
{
    private readonly ExpertBank _bank;
    private readonly IReadOnlyList<IFabricServer> _servers;

    public PoolService(ExpertBank bank, IReadOnlyList<IFabricServer> servers)
    {
        _bank = bank;
        _servers = servers;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(_servers.Select(s => s.StopAsync(cancellationToken))).ConfigureAwait(false);
        foreach (var server in _servers)
            await server.DisposeAsync().ConfigureAwait(false);
        _bank.Dispose();
    }

    /// <summary>Starts one server per endpoint; on failure the ones already started are disposed.</summary>
    public static async Task<List<IFabricServer>> StartServersAsync(IEnumerable<FabricEndpoint> endpoints, ExpertBank bank, PoolControlHandler handler, PoolMetrics metrics, CancellationToken cancellationToken)
    {
        var options = new FabricServerOptions
        {
            ControlHandler = handler,
            Authorize = handler.Authorize,
            ReadServed = metrics.Counters.Record,
        };
        var servers = new List<IFabricServer>();
        try
        {
            foreach (var endpoint in endpoints)
            {
                var server = await FabricServers.StartAsync(endpoint, bank.Store, options, cancellationToken).ConfigureAwait(false);
                servers.Add(server);
                metrics.Track(server);
            }
            return servers;
        }
        catch
        {
            foreach (var s in servers)
                await s.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
