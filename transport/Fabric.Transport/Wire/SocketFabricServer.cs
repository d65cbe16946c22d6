using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Fabric.Transport.Shm;
using Fabric.Transport.Tcp;

namespace Fabric.Transport.Wire;

/// <summary>
/// Accepts connections on a listening socket (TCP, or the Unix socket of an shm server) and runs one
/// <see cref="ServerConnection"/> per client. Shared by <see cref="TcpFabricServer"/> and <see cref="ShmFabricServer"/>.
/// </summary>
internal sealed class SocketFabricServer
{
    private readonly Socket _listener;
    private readonly ConcurrentDictionary<ServerConnection, byte> _connections = new();
    private readonly CancellationTokenSource _accepting = new();
    private readonly Action<Socket>? _configure;
    private readonly Timer _deadlines;
    private Task _acceptLoop = Task.CompletedTask;
    private int _stopped;

    public SocketFabricServer(Socket listener, string transport, RegionStore store, FabricServerOptions options, bool allowsReads, ulong generation, Action<Socket>? configure)
    {
        _listener = listener;
        Transport = transport;
        Store = store;
        Options = options;
        AllowsReads = allowsReads;
        Generation = generation;
        _configure = configure;
        Logger = options.Logger ?? NullLogger.Instance;
        Refusals = new RateLimitedLog(Logger);
        options.Limits.Validate();
        _deadlines = new Timer(static state => ((SocketFabricServer)state!).CheckDeadlines(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public string Transport { get; }
    public RegionStore Store { get; }
    public FabricServerOptions Options { get; }
    public bool AllowsReads { get; }
    public ulong Generation { get; }
    public int SessionCount => _connections.Count;
    public ILogger Logger { get; }

    /// <summary>Warnings about sessions closed for misbehaving, rate-limited.</summary>
    public RateLimitedLog Refusals { get; }

    public void Start()
    {
        _acceptLoop = AcceptAsync();
        var period = Options.Limits.CheckPeriod;
        _deadlines.Change(period, period);
    }

    private void CheckDeadlines()
    {
        var now = Environment.TickCount64;
        foreach (var connection in _connections.Keys)
            connection.CheckDeadlines(now);
    }

    private async Task AcceptAsync()
    {
        while (!_accepting.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_accepting.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                if (_accepting.IsCancellationRequested)
                    return;
                Refusals.Warn($"{Transport}: accepting a connection failed: {e.Message}");
                continue;
            }
            ServerConnection connection;
            try
            {
                _configure?.Invoke(socket);
                connection = new ServerConnection(this, socket);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
            {
                // The peer gave up between connect and accept (or before its descriptor could be passed).
                Logger.LogDebug("{Transport}: a connection ended before its session started: {Reason}", Transport, e.Message);
                socket.Dispose();
                continue;
            }
            _connections.TryAdd(connection, 0);
            Logger.LogDebug("{Transport} session {Session} opened from {Remote}", Transport, connection.Session.Id, connection.Session.Remote?.ToString() ?? "a local peer");
            if (_accepting.IsCancellationRequested)
                connection.Abort();
            connection.Start();
        }
    }

    /// <summary>Runs <see cref="FabricServerOptions.Authorize"/>; a callback that throws refuses the read.</summary>
    public bool Authorizes(ServerSession session, ExportedRegion region)
    {
        if (Options.Authorize is not { } authorize)
            return true;
        try
        {
            return authorize(session, region);
        }
#pragma warning disable CA1031 // A faulty policy refuses rather than takes the session down.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Logger.LogError(e, "The read policy (Authorize) failed for session {Session}; the read is refused", session.Id);
            return false;
        }
    }

    internal void OnClosed(ServerConnection connection)
    {
        _connections.TryRemove(connection, out _);
        var session = connection.Session;
        if (session.CloseReason is { } reason)
            Refusals.Warn($"{Transport} session {session.Id} closed: {reason}");
        else
            Logger.LogDebug("{Transport} session {Session} closed", Transport, session.Id);
        try
        {
            Options.SessionClosed?.Invoke(session);
        }
#pragma warning disable CA1031 // A metrics callback must not break the server.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Logger.LogError(e, "The SessionClosed callback failed for session {Session}", session.Id);
        }
    }

    private async Task StopAcceptingAsync()
    {
        _accepting.Cancel();
        _listener.Dispose();
        await _acceptLoop.ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            await Task.WhenAll(_connections.Keys.Select(c => c.Completion)).WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        await StopAcceptingAsync().ConfigureAwait(false);
        var connections = _connections.Keys.ToList();
        foreach (var connection in connections)
            connection.RequestStop();
        try
        {
            await Task.WhenAll(connections.Select(c => c.Completion)).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            foreach (var connection in connections)
                connection.Abort();
            throw;
        }
    }

    /// <summary>Closes the listener and every connection at once, without finishing reads, as a dying process would.</summary>
    public void Abort()
    {
        Interlocked.Exchange(ref _stopped, 1);
        _accepting.Cancel();
        _listener.Dispose();
        foreach (var connection in _connections.Keys)
            connection.Abort();
    }

    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await StopAsync(grace.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        Abort();
        await Task.WhenAll(_connections.Keys.Select(c => c.Completion)).ConfigureAwait(false);
        await _deadlines.DisposeAsync().ConfigureAwait(false);
        _accepting.Dispose();
    }
}
