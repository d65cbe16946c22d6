using System.Net.Sockets;
using Fabric.Transport.Wire;

namespace Fabric.Transport.Shm;

/// <summary>
/// Serves a <see cref="ShmRegionStore"/>: clients read by load/store from their own read-only mapping; this server
/// only runs the control channel on the Unix socket named in the header (handshake, region grants that apply
/// <see cref="FabricServerOptions.Authorize"/>, user control messages). When it stops or dies the socket closes,
/// which is how clients learn that reads must end with <see cref="ReadStatus.PeerGone"/>.
/// </summary>
public sealed class ShmFabricServer : IFabricServer
{
    private readonly SocketFabricServer _server;
    private readonly string _socketPath;

    private ShmFabricServer(SocketFabricServer server, ShmRegionStore store)
    {
        _server = server;
        _socketPath = store.ControlPath;
        Endpoint = store.Endpoint;
    }

    public FabricEndpoint Endpoint { get; }

    public int SessionCount => _server.SessionCount;

    /// <summary>Listens on the store's control socket (mode 0600, replacing a stale one). The store stays owned by the caller.</summary>
    public static Task<ShmFabricServer> StartAsync(ShmRegionStore store, FabricServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        cancellationToken.ThrowIfCancellationRequested();
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            File.Delete(store.ControlPath);
            listener.Bind(new UnixDomainSocketEndPoint(store.ControlPath));
            if (!OperatingSystem.IsWindows())
                File.SetUnixFileMode(store.ControlPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(512);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            listener.Dispose();
            throw new EndpointException($"Cannot serve {store.Endpoint}: its control socket {store.ControlPath} cannot be bound ({e.Message.TrimEnd('.')}).", e);
        }
        var server = new SocketFabricServer(listener, "shm", store, options ?? FabricServerOptions.Default, allowsReads: false, store.Generation, configure: null);
        server.Start();
        return Task.FromResult(new ShmFabricServer(server, store));
    }

    public Task StopAsync(CancellationToken cancellationToken = default) => _server.StopAsync(cancellationToken);

    /// <summary>Closes the control socket and every session at once, as a crashed process would.</summary>
    public void Abort() => _server.Abort();

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync().ConfigureAwait(false);
        try
        {
            File.Delete(_socketPath);
        }
        catch (IOException)
        {
        }
    }
}
