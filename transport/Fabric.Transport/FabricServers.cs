using Fabric.Transport.Shm;
using Fabric.Transport.Tcp;

namespace Fabric.Transport;

/// <summary>
/// Starts a server for any endpoint scheme: <c>tcp://HOST:PORT</c> serves any store; <c>shm://PATH</c> needs the
/// <see cref="ShmRegionStore"/> created at PATH; <c>rdma://HOST:PORT</c> serves any store. tcp, shm and rdma are in
/// the table from the start; a backend in a higher layer (the simulated one in Fabric.Sim) adds its scheme with
/// <see cref="Register"/>.
/// </summary>
public static class FabricServers
{
    /// <summary>Starts serving <paramref name="store"/> on <paramref name="listen"/>.</summary>
    public delegate Task<IFabricServer> ServerStarter(FabricEndpoint listen, RegionStore store, FabricServerOptions options, CancellationToken cancellationToken);

    private static readonly Dictionary<string, ServerStarter> Starters = new(StringComparer.Ordinal)
    {
        ["tcp"] = async (listen, store, options, ct) => await TcpFabricServer.StartAsync(listen, store, options, ct).ConfigureAwait(false),
        ["shm"] = StartShmAsync,
        ["rdma"] = async (listen, store, options, ct) => await Rdma.RdmaFabricServer.StartAsync(listen, store, options, ct).ConfigureAwait(false),
    };
    private static readonly Lock Gate = new();

    /// <summary>Installs (or replaces) the server starter for <paramref name="scheme"/>.</summary>
    public static void Register(string scheme, ServerStarter starter)
    {
        lock (Gate)
            Starters[scheme] = starter;
    }

    /// <summary>
    /// Starts a server on <paramref name="listen"/> for <paramref name="store"/> (which the caller keeps owning).
    /// An unknown scheme or an endpoint that cannot be served throws <see cref="EndpointException"/>.
    /// </summary>
    public static Task<IFabricServer> StartAsync(FabricEndpoint listen, RegionStore store, FabricServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(listen);
        ServerStarter? starter;
        lock (Gate)
            Starters.TryGetValue(listen.Scheme, out starter);
        if (starter is null)
            throw new EndpointException($"No server for {listen.Scheme}:// is available in this process.");
        return starter(listen, store, options ?? FabricServerOptions.Default, cancellationToken);
    }

    private static async Task<IFabricServer> StartShmAsync(FabricEndpoint listen, RegionStore store, FabricServerOptions options, CancellationToken cancellationToken)
    {
        if (store is not ShmRegionStore shm || shm.Path != listen.Path)
            throw new EndpointException($"Cannot serve {listen}: its regions must be a ShmRegionStore created at {listen.Path}.");
        return await ShmFabricServer.StartAsync(shm, options, cancellationToken).ConfigureAwait(false);
    }
}
