using System.Net;
using Microsoft.Extensions.Logging;

namespace Fabric.Transport;

/// <summary>A running server that exports the regions of one <see cref="RegionStore"/> on one endpoint.</summary>
public interface IFabricServer : IAsyncDisposable
{
    /// <summary>The endpoint clients connect to; for tcp://HOST:0 it carries the port actually bound.</summary>
    FabricEndpoint Endpoint { get; }

    /// <summary>Sessions currently connected.</summary>
    int SessionCount { get; }

    /// <summary>Stops accepting, lets in-flight reads finish (up to <paramref name="cancellationToken"/>), then closes every session.</summary>
    Task StopAsync(CancellationToken cancellationToken = default);
}

/// <summary>Answers the control messages that layers above the transport define (catalog, auth).</summary>
public interface IControlHandler
{
    /// <summary>
    /// Answers <paramref name="request"/> for <paramref name="session"/>. Throw <see cref="ControlException"/> to send an
    /// error reply; the session stays open. Any other exception is sent as an Internal error.
    /// </summary>
    ValueTask<ControlMessage> HandleAsync(ServerSession session, ControlMessage request, CancellationToken cancellationToken);
}

/// <summary>One connected client as the server sees it. Counters are updated by the transport.</summary>
public sealed class ServerSession
{
    private static long s_nextId;
    private long _bytesRead;
    private long _reads;
    private long _refusedReads;
    private int _failedAuthentications;
    private string? _closeReason;

    public ServerSession(string transport, EndPoint? remote)
    {
        Id = Interlocked.Increment(ref s_nextId);
        Transport = transport;
        Remote = remote;
    }

    public long Id { get; }

    /// <summary>The scheme the client's session came in on: "tcp", "shm", "rdma", "sim".</summary>
    public string Transport { get; }

    /// <summary>The peer's address where the transport has one.</summary>
    public EndPoint? Remote { get; }

    /// <summary>Set by the layer above once the client has authenticated (for the pool: the tenant name); null until then.</summary>
    public string? Principal { get; set; }

    /// <summary>Bytes served to the client's session by reads the server saw (shm reads are loads the server never sees).</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);
    public long Reads => Interlocked.Read(ref _reads);
    public long RefusedReads => Interlocked.Read(ref _refusedReads);

    public void CountRead(long bytes)
    {
        Interlocked.Add(ref _bytesRead, bytes);
        Interlocked.Increment(ref _reads);
    }

    public void CountRefused() => Interlocked.Increment(ref _refusedReads);

    /// <summary>Counts one refused authentication of the client's session; returns how many there have been.</summary>
    public int CountFailedAuthentication() => Interlocked.Increment(ref _failedAuthentications);

    /// <summary>Why the session was closed or is closing (by the server or the layer above); null while it is open.</summary>
    public string? CloseReason => Volatile.Read(ref _closeReason);

    /// <summary>
    /// Asks the transport to close the client's session once the reply to the request being answered has been sent; the
    /// session reads no further request. The first reason given is kept.
    /// </summary>
    public void RequestClose(string reason) => Interlocked.CompareExchange(ref _closeReason, reason, null);
}

/// <summary>Options every server honours.</summary>
public sealed record FabricServerOptions
{
    /// <summary>Answers user control messages; null refuses them all with UnknownMessageType.</summary>
    public IControlHandler? ControlHandler { get; init; }

    /// <summary>
    /// Decides whether a session may read a region at all (in addition to the key). Null lets every session read.
    /// The pool uses this to refuse reads before authentication.
    /// </summary>
    public Func<ServerSession, ExportedRegion, bool>? Authorize { get; init; }

    /// <summary>
    /// Whether a session has authenticated. Until it has, it may send the hello and the control types in
    /// <see cref="AuthenticationTypes"/> only, one at a time and small (<see cref="SessionLimits"/>); any other
    /// frame is refused and closes the session. Null treats every session as authenticated from the start.
    /// </summary>
    public Func<ServerSession, bool>? IsAuthenticated { get; init; }

    /// <summary>The control types an unauthenticated session may send (the pool: Authenticate).</summary>
    public IReadOnlySet<ushort> AuthenticationTypes { get; init; } = new HashSet<ushort>();

    /// <summary>Per-session bounds on memory and time.</summary>
    public SessionLimits Limits { get; init; } = SessionLimits.Default;

    /// <summary>
    /// Where the server logs sessions opened and closed (with the reason a session was closed), refused clients
    /// (rate-limited) and failures of the callbacks above. Null logs nothing.
    /// </summary>
    public ILogger? Logger { get; init; }

    /// <summary>Called when a session ends, for metrics.</summary>
    public Action<ServerSession>? SessionClosed { get; init; }

    /// <summary>Called after every read the server serves or refuses, with the bytes sent (0 when refused).</summary>
    public Action<ServerSession, ReadStatus, long>? ReadServed { get; init; }

    public static FabricServerOptions Default { get; } = new();
}
