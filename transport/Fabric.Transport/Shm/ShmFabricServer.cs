using System.Net.Sockets;
using Fabric.Common.Native;
using Fabric.Transport.Wire;

namespace Fabric.Transport.Shm;

/// <summary>
/// Serves a <see cref="ShmRegionStore"/>: clients read by load/store from their own read-only mapping; this server
/// only runs the control channel on the Unix socket named in the header (the sealed memory file that holds the regions,
/// passed to each client as it connects; handshake, region grants that apply
/// <see cref="FabricServerOptions.Authorize"/>, user control messages). When it stops or dies the socket closes,
/// which is how clients learn that reads must end with <see cref="ReadStatus.PeerGone"/>.
/// </summary>
public sealed class ShmFabricServer : IFabricServer
{
    private readonly SocketFabricServer _server;
    private readonly string _socketPath;
    private readonly FileIdentity _socket;

    private ShmFabricServer(SocketFabricServer server, ShmRegionStore store, FileIdentity socket)
    {
        _server = server;
        _socketPath = store.ControlPath;
        _socket = socket;
        Endpoint = store.Endpoint;
    }

    public FabricEndpoint Endpoint { get; }

    public int SessionCount => _server.SessionCount;

    /// <summary>
    /// Listens on the store's control socket (mode 0600). A stale socket there is replaced (the store's lock says no live
    /// pool owns this path); anything else there is refused. The store stays owned by the caller.
    /// </summary>
    public static Task<ShmFabricServer> StartAsync(ShmRegionStore store, FabricServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        cancellationToken.ThrowIfCancellationRequested();
        ShmRegionStore.RefuseNonSocket(store.ControlPath);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        FileIdentity socket;
        var temporary = TemporaryName(store.ControlPath);
        try
        {
            // Bound under a temporary name and renamed over PATH.ctl: the socket closes by unlinking the name it was
            // bound to, which must never be PATH.ctl once another file may have taken that name.
            listener.Bind(new UnixDomainSocketEndPoint(temporary));
            if (!OperatingSystem.IsWindows())
                File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            socket = FileIdentity.TryOfPath(temporary, out var bound) ? bound : default;
            listener.Listen(512);
            File.Move(temporary, store.ControlPath, overwrite: true);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            listener.Dispose();
            File.Delete(temporary);
            throw new EndpointException($"Cannot serve {store.Endpoint}: its control socket {store.ControlPath} cannot be bound ({e.Message.TrimEnd('.')}).", e);
        }
        // Each client gets the sealed memory file that holds the regions first, before any frame.
        Action<Socket>? passMemory = store.MemoryFile is { } memory ? socket => DescriptorPassing.Send(socket.SafeHandle, memory) : null;
        var server = new SocketFabricServer(listener, "shm", store, options ?? FabricServerOptions.Default, allowsReads: false, store.Generation, passMemory);
        server.Start();
        return Task.FromResult(new ShmFabricServer(server, store, socket));
    }

    /// <summary>A free name beside <paramref name="controlPath"/> no longer than it, so that it fits a socket address too.</summary>
    private static string TemporaryName(string controlPath)
    {
        var directory = Path.GetDirectoryName(controlPath) ?? "";
        var length = Math.Clamp(Path.GetFileName(controlPath).Length - 1, 4, 16);
        while (true)
        {
            var candidate = Path.Combine(directory, "." + Convert.ToHexStringLower(BitConverter.GetBytes(Random.Shared.NextInt64()))[..length]);
            if (!FileIdentity.TryOfPath(candidate, out _))
                return candidate;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken = default) => _server.StopAsync(cancellationToken);

    /// <summary>Closes the control socket and every session at once, as a crashed process would.</summary>
    public void Abort() => _server.Abort();

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync().ConfigureAwait(false);
        if (!FileIdentity.TryOfPath(_socketPath, out var now) || now != _socket)
            return;
        try
        {
            File.Delete(_socketPath);
        }
        catch (IOException)
        {
        }
    }
}
