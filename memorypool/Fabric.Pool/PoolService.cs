using System.Globalization;
using Fabric.Pool.Server.Bank;
using Fabric.Pool.Server.Discovery;
using Fabric.Pool.Server.Serving;
using Fabric.Cli;
using Fabric.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fabric.Pool;

/// <summary>
/// The daemon's hosted service: owns the bank and the servers that export it. On stop (SIGTERM, Ctrl+C) it stops
/// every server, which lets in-flight reads finish until the drain deadline; sessions still open then (a client that
/// stopped reading its replies) are dropped, said on stderr, and the bank is released.
/// </summary>
internal sealed class PoolService : IHostedService
{
    private readonly ExpertBank _bank;
    private readonly IReadOnlyList<IFabricServer> _servers;
    private readonly TimeSpan _drainTimeout;
    private readonly PoolRegistrar? _registrar;

    public PoolService(ExpertBank bank, IReadOnlyList<IFabricServer> servers, TimeSpan drainTimeout, PoolRegistrar? registrar = null)
    {
        _bank = bank;
        _servers = servers;
        _drainTimeout = drainTimeout;
        _registrar = registrar;
    }

    private static ILogger Log => FabricLogging.Factory.CreateLogger("fabric-pool");

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Out of etcd first, so that engines move to other pools while this one drains.
        if (_registrar is not null)
            await _registrar.DisposeAsync().ConfigureAwait(false);
        var sessions = _servers.Sum(s => s.SessionCount);
        Log.LogInformation("draining {Sessions} session(s), for at most {Seconds} s", sessions, _drainTimeout.TotalSeconds);
        using var abort = new CancellationTokenSource();
        var stopping = Task.WhenAll(_servers.Select(s => s.StopAsync(abort.Token)));
        try
        {
            await stopping.WaitAsync(_drainTimeout, cancellationToken).ConfigureAwait(false);
            Log.LogInformation("drained every session");
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            var dropped = _servers.Sum(s => s.SessionCount);
            Log.LogWarning("dropping {Sessions} session(s) still open at the drain deadline", dropped);
            await abort.CancelAsync().ConfigureAwait(false);
            try
            {
                await stopping.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The servers were told to abort (above): their stopping ends cancelled by design.
            }
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"fabric-pool: dropped {dropped} session(s) after the drain deadline ({_drainTimeout.TotalSeconds:0.###} s).")).ConfigureAwait(false);
        }
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
            IsAuthenticated = handler.IsAuthenticated,
            AuthenticationTypes = PoolControlHandler.AuthenticationTypes,
            ReadServed = metrics.Counters.Record,
            Logger = FabricLogging.Factory.CreateLogger("fabric-pool.sessions"),
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
