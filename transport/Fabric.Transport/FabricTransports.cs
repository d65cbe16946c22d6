using Fabric.Transport.Shm;
using Fabric.Transport.Tcp;

namespace Fabric.Transport;

/// <summary>
/// The one place that maps an endpoint's scheme to a backend. tcp, shm and rdma are in the table from the start; a
/// backend in a higher layer (the simulated one in Fabric.Sim) adds its scheme with <see cref="RegisterClient"/>.
/// </summary>
public static class FabricTransports
{
    /// <summary>Connects to one endpoint of a scheme.</summary>
    public delegate ValueTask<IFabricClient> ClientConnector(FabricEndpoint endpoint, FabricClientOptions options, CancellationToken cancellationToken);

    private static readonly Dictionary<string, ClientConnector> Connectors = new(StringComparer.Ordinal)
    {
        ["tcp"] = TcpFabricClient.ConnectAsync,
        ["shm"] = ShmFabricClient.ConnectAsync,
        ["rdma"] = Rdma.RdmaFabricClient.ConnectAsync,
    };
    private static readonly Lock Gate = new();

    /// <summary>Installs (or replaces) the connector for <paramref name="scheme"/>.</summary>
    public static void RegisterClient(string scheme, ClientConnector connector)
    {
        lock (Gate)
            Connectors[scheme] = connector;
    }

    /// <summary>
    /// Connects to <paramref name="endpoint"/>. A refused connection, a missing shm file, a missing RDMA device or an
    /// unknown scheme throws <see cref="EndpointException"/> with one sentence.
    /// </summary>
    public static ValueTask<IFabricClient> ConnectAsync(FabricEndpoint endpoint, FabricClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ClientConnector? connector;
        lock (Gate)
            Connectors.TryGetValue(endpoint.Scheme, out connector);
        if (connector is null)
            throw new EndpointException($"No transport for {endpoint.Scheme}:// is available in this process.");
        return connector(endpoint, options ?? FabricClientOptions.Default, cancellationToken);
    }

    /// <summary>Parses <paramref name="uri"/> and connects.</summary>
    public static ValueTask<IFabricClient> ConnectAsync(string uri, FabricClientOptions? options = null, CancellationToken cancellationToken = default) =>
        ConnectAsync(FabricEndpoint.Parse(uri), options, cancellationToken);
}
