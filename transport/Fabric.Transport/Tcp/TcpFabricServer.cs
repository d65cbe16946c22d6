using System.Net;
using System.Net.Sockets;
using Fabric.Transport.Wire;

namespace Fabric.Transport.Tcp;

/// <summary>
/// Serves the regions of a <see cref="RegionStore"/> on <c>tcp://HOST:PORT</c>. Requested ranges are streamed from
/// region memory without an intermediate copy for large reads. The store stays owned by the caller.
/// </summary>
public sealed class TcpFabricServer : IFabricServer
{
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    private readonly SocketFabricServer _server;

    private TcpFabricServer(SocketFabricServer server, FabricEndpoint endpoint)
    {
        _server = server;
        Endpoint = endpoint;
    }

    public FabricEndpoint Endpoint { get; }

    public int SessionCount => _server.SessionCount;

    /// <summary>
    /// Listens on <paramref name="listen"/> (port 0 picks a free port; <see cref="Endpoint"/> has the one bound).
    /// An address in use or not on this machine throws <see cref="EndpointException"/>.
    /// </summary>
    public static async Task<TcpFabricServer> StartAsync(FabricEndpoint listen, RegionStore store, FabricServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(listen);
        ArgumentNullException.ThrowIfNull(store);
        if (listen.Scheme != "tcp")
            throw new EndpointException($"{listen} is not a tcp:// endpoint.");
        var address = await EndpointAddresses.ResolveAsync(listen, cancellationToken).ConfigureAwait(false);
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // SocketOptionName.ReuseAddress also sets SO_REUSEPORT on Linux, which lets a second server bind the same
            // port and take half the connections. Plain SO_REUSEADDR only allows rebinding over TIME_WAIT leftovers.
            if (OperatingSystem.IsLinux())
                listener.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            listener.Bind(new IPEndPoint(address, listen.Port));
            listener.Listen(512);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            listener.Dispose();
            throw new EndpointException($"{listen} is already in use by another process.", e);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new EndpointException($"Cannot listen on {listen}: {e.Message.TrimEnd('.')}.", e);
        }
        var bound = (IPEndPoint)listener.LocalEndPoint!;
        var server = new SocketFabricServer(listener, "tcp", store, options ?? FabricServerOptions.Default, allowsReads: true, generation: 0, FramedClient.Tune);
        server.Start();
        return new TcpFabricServer(server, listen with { Port = bound.Port });
    }

    public Task StopAsync(CancellationToken cancellationToken = default) => _server.StopAsync(cancellationToken);

    /// <summary>Closes the listener and every connection at once, without finishing reads, as a crashed process would.</summary>
    public void Abort() => _server.Abort();

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
