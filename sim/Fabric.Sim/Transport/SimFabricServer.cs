using Fabric.Sim.Routing;
using Fabric.Transport;

namespace Fabric.Sim.Transport;

/// <summary>A store exported at one node of a <see cref="SimFabric"/>. The store stays the caller's.</summary>
public sealed class SimFabricServer : IFabricServer
{
    private readonly List<SimFabricClient> _clients = [];
    private readonly Lock _gate = new();
    private volatile bool _accepting = true;

    internal SimFabricServer(SimFabric fabric, int nodeId, FabricEndpoint endpoint, RegionStore store, FabricServerOptions options)
    {
        Fabric = fabric;
        NodeId = nodeId;
        Endpoint = endpoint;
        Store = store;
        Options = options;
    }

    public FabricEndpoint Endpoint { get; }
    internal SimFabric Fabric { get; }
    internal int NodeId { get; }
    internal RegionStore Store { get; }
    internal FabricServerOptions Options { get; }
    internal bool Accepting => _accepting;

    public int SessionCount
    {
        get
        {
            lock (_gate)
                return _clients.Count;
        }
    }

    internal SimFabricClient Accept(Route route, FabricClientOptions options)
    {
        var client = new SimFabricClient(this, route, options);
        lock (_gate)
            _clients.Add(client);
        return client;
    }

    internal void SessionEnded(SimFabricClient client)
    {
        bool removed;
        lock (_gate)
            removed = _clients.Remove(client);
        if (removed)
            Options.SessionClosed?.Invoke(client.Session);
    }

    internal void ExpireDeadlines(long ticks)
    {
        SimFabricClient[] clients;
        lock (_gate)
            clients = [.. _clients];
        foreach (var c in clients)
            c.ExpireDeadlines(ticks);
    }

    /// <summary>Stops accepting, lets in-flight reads finish, then ends every session.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var clients = StopAccepting();
        foreach (var c in clients)
            await c.DrainAsync(cancellationToken).ConfigureAwait(false);
        foreach (var c in clients)
            c.Drop(ReadStatus.PeerGone);
    }

    /// <summary>Ends the server at once, as a crash would: pending reads fail with PeerGone.</summary>
    public void Abort()
    {
        foreach (var c in StopAccepting())
            c.Drop(ReadStatus.PeerGone);
    }

    /// <summary>Refuses new clients, leaves the fabric's registry, and returns the clients connected now.</summary>
    private SimFabricClient[] StopAccepting()
    {
        _accepting = false;
        Fabric.Unregister(this);
        lock (_gate)
            return [.. _clients];
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);
}
