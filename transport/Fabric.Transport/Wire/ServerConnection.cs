using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Fabric.Transport.Control;
using Microsoft.Extensions.Logging;

namespace Fabric.Transport.Wire;

/// <summary>
/// One client connection on the server: a fill loop (socket → <see cref="Pipe"/>, paused at a high-water mark), a
/// process loop (frames → replies) and a send loop that streams read payloads straight from region memory.
/// A malformed frame closes this connection only. Control requests in flight are bounded
/// (<see cref="SessionLimits.MaxInFlightControls"/>): past the bound the process loop waits, the pipe fills and the
/// fill loop stops reading the socket, so a client that never reads its replies costs bounded memory. Until the
/// session has authenticated its requests are answered one at a time and only the authentication types are admitted.
/// </summary>
internal sealed class ServerConnection
{
    /// <summary>
    /// Payloads up to this many bytes are copied into the send batch. Of a larger one only this much rides in the batch
    /// with its header (so the client wakes once, not for a lone header); the rest goes out straight from the region.
    /// </summary>
    private const int SmallPayloadBytes = 64 * 1024;
    private const int BatchBytes = 256 * 1024;

    /// <summary>Replies queued for the send loop before the process loop stops reading requests.</summary>
    private const int MaxQueuedReplies = 512;

    /// <summary>
    /// Unprocessed request bytes at which the server stops reading the socket. It must hold the largest legal frame
    /// (a 16 MiB control body), or that frame could never complete; read requests never come near it, because a
    /// client has at most 1,024 of them (40 KiB) in flight and the reply queue stalls the process loop first.
    /// </summary>
    private const int PauseReadingBytes = ControlTypes.MaxBodyBytes + (1024 * 1024);

    private readonly Socket _socket;
    private readonly SocketFabricServer _server;
    private readonly Pipe _input = new(new PipeOptions(
        pauseWriterThreshold: PauseReadingBytes,
        resumeWriterThreshold: PauseReadingBytes / 2,
        readerScheduler: PipeScheduler.Inline,
        minimumSegmentSize: 16 * 1024,
        useSynchronizationContext: false));
    private readonly Channel<Outgoing> _outgoing = Channel.CreateBounded<Outgoing>(new BoundedChannelOptions(MaxQueuedReplies)
    {
        SingleReader = true,
        SingleWriter = false,
        FullMode = BoundedChannelFullMode.Wait,
        // An idle send loop wakes up on the thread that queued the reply (the socket's), saving a thread-pool hop.
        AllowSynchronousContinuations = true,
    });
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _controlsDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _aborted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _controlSlots;
    private int _activeControls = 1;
    private volatile bool _stopRequested;
    // Deadline bookkeeping, in Environment.TickCount64 milliseconds, read by the server's deadline timer.
    private long _lastFrameAt = Environment.TickCount64;
    private long _partialSince;
    private volatile bool _awaitingPeer;
    private volatile bool _greeted;

    public ServerConnection(SocketFabricServer server, Socket socket)
    {
        _server = server;
        _socket = socket;
        _controlSlots = new SemaphoreSlim(server.Options.Limits.MaxInFlightControls);
        Session = new ServerSession(server.Transport, socket.RemoteEndPoint);
    }

    public ServerSession Session { get; }

    public Task Completion { get; private set; } = Task.CompletedTask;

    public void Start() => Completion = RunAsync();

    /// <summary>Stops reading requests; replies to those already read are still sent, then the socket closes.</summary>
    public void RequestStop()
    {
        _stopRequested = true;
        _input.Reader.CancelPendingRead();
        _stopping.Cancel();
    }

    /// <summary>Whether the connection ended without finishing its work (dead peer, malformed frame, server abort).</summary>
    public bool WasAborted => _aborted.Task.IsCompleted;

    /// <summary>Closes the socket at once, as if the process had died.</summary>
    public void Abort()
    {
        _stopRequested = true;
        _aborted.TrySetResult();
        _stopping.Cancel();
        try
        {
            _socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed: there is nothing left to linger on or shut down.
        }
        _socket.Dispose();
    }

    /// <summary>Whether the session has said hello and authenticated (or the server asks for no authentication).</summary>
    private bool IsAuthenticated => _greeted && (_server.Options.IsAuthenticated is not { } check || check(Session));

    /// <summary>
    /// Closes the session when it has kept the server waiting too long: a frame begun and not finished within the
    /// frame timeout, or no frame at all within the idle timeout. Only while the server is waiting for the peer.
    /// </summary>
    public void CheckDeadlines(long now)
    {
        if (!_awaitingPeer || _stopRequested)
            return;
        var limits = _server.Options.Limits;
        var partialSince = Volatile.Read(ref _partialSince);
        string? reason = null;
        if (partialSince != 0)
        {
            if (now - partialSince > limits.FrameTimeout.TotalMilliseconds)
                reason = string.Create(CultureInfo.InvariantCulture, $"a frame stayed incomplete for longer than the frame timeout ({limits.FrameTimeout.TotalSeconds:0.###} s)");
        }
        else
        {
            var authenticated = IsAuthenticated;
            if ((authenticated ? limits.IdleTimeout : limits.UnauthenticatedIdleTimeout) is { } idle && now - Volatile.Read(ref _lastFrameAt) > idle.TotalMilliseconds)
                reason = string.Create(CultureInfo.InvariantCulture, $"{(authenticated ? "idle for longer than" : "not authenticated within")} the idle timeout ({idle.TotalSeconds:0.###} s)");
        }
        if (reason is null || !_awaitingPeer)
            return;
        Session.RequestClose(reason);
        Abort();
    }

    private async Task RunAsync()
    {
        await Task.Yield();
        var fill = FillAsync();
        var send = SendAsync();
        try
        {
            await ProcessAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Whatever goes wrong in one session (a broken peer, a throwing callback) ends that session only.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Session.RequestClose($"the session failed: {e.Message}");
            Abort();
        }
        await _input.Reader.CompleteAsync().ConfigureAwait(false);
        if (Interlocked.Decrement(ref _activeControls) == 0)
            _controlsDone.TrySetResult();
        // Replies to control requests already taken are sent before closing, unless the session is being torn down.
        await Task.WhenAny(_controlsDone.Task, _aborted.Task).ConfigureAwait(false);
        _outgoing.Writer.TryComplete();
        await send.ConfigureAwait(false);
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed: there is nothing left to linger on or shut down.
        }
        _socket.Dispose();
        await fill.ConfigureAwait(false);
        _server.OnClosed(this);
    }

    private async Task FillAsync()
    {
        var writer = _input.Writer;
        try
        {
            while (true)
            {
                var memory = writer.GetMemory(16 * 1024);
                var received = await _socket.ReceiveAsync(memory, SocketFlags.None).ConfigureAwait(false);
                if (received == 0)
                    break;
                writer.Advance(received);
                var flush = await writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                    break;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The peer went away or the session was closed: the end of the session's input, said when it closes.
            _server.Logger.LogDebug("session {Session}: receiving ended: {Reason}", Session.Id, e.Message);
        }
        await writer.CompleteAsync().ConfigureAwait(false);
    }

    private async Task ProcessAsync()
    {
        var reader = _input.Reader;
        while (!_stopRequested)
        {
            _awaitingPeer = true;
            var result = await reader.ReadAsync().ConfigureAwait(false);
            _awaitingPeer = false;
            var buffer = result.Buffer;
            var completed = false;
            while (!_stopRequested && buffer.Length >= FrameHeader.Size)
            {
                var header = ParseHeader(buffer);
                if (!IsAcceptable(header, _greeted))
                {
                    Session.RequestClose($"it sent a malformed frame (kind {(byte)header.Kind}, {header.BodyLength} bytes)");
                    Abort();
                    return;
                }
                var authenticated = !_greeted || IsAuthenticated;
                if (!authenticated && !AdmitsBeforeAuthentication(header))
                {
                    await RefuseUnauthenticatedAsync(header).ConfigureAwait(false);
                    return;
                }
                var frameLength = FrameHeader.Size + (long)header.BodyLength;
                if (buffer.Length < frameLength)
                    break;
                var body = buffer.Slice(FrameHeader.Size, header.BodyLength);
                if (header.Kind == FrameKind.Hello)
                {
                    _greeted = true;
                    if (!await AnswerHelloAsync(body).ConfigureAwait(false))
                        return;
                }
                else if (header.Kind == FrameKind.Read)
                {
                    await AnswerReadAsync(header.RequestId, body).ConfigureAwait(false);
                }
                else
                {
                    if (!await TakeControlSlotAsync().ConfigureAwait(false))
                        return;
                    Interlocked.Increment(ref _activeControls);
                    var answering = AnswerControlAsync(header, body.ToArray());
                    if (!authenticated)
                    {
                        // Before authentication requests go one at a time, so each is judged by the outcome of the last.
                        await answering.ConfigureAwait(false);
                        if (Session.CloseReason is not null)
                            return;
                    }
                }
                buffer = buffer.Slice(frameLength);
                completed = true;
            }
            var now = Environment.TickCount64;
            if (completed)
                Volatile.Write(ref _lastFrameAt, now);
            Volatile.Write(ref _partialSince, buffer.IsEmpty ? 0 : completed || _partialSince == 0 ? now : _partialSince);
            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
                return;
        }
    }

    private bool AdmitsBeforeAuthentication(in FrameHeader header) =>
        header.Kind == FrameKind.Control
        && header.BodyLength <= _server.Options.Limits.MaxUnauthenticatedBodyBytes
        && _server.Options.AuthenticationTypes.Contains(header.Type);

    /// <summary>Answers a frame an unauthenticated session may not send with a refusal, and closes the session after it.</summary>
    private async ValueTask RefuseUnauthenticatedAsync(FrameHeader header)
    {
        Session.RequestClose(header.Kind == FrameKind.Control
            ? $"it sent control message type {header.Type} ({header.BodyLength} bytes) before authenticating"
            : "it sent a read before authenticating");
        Outgoing refusal;
        if (header.Kind == FrameKind.Read)
        {
            refusal = new Outgoing(FrameKind.ReadReply, ReadStatus.AccessDenied, 0, header.RequestId, 0, 0, default);
        }
        else
        {
            var error = ControlDispatcher.Error(ControlErrorCode.Unauthorized,
                $"unauthorized: authenticate before sending control message type {header.Type}; the session is closed.");
            refusal = Outgoing.Control(FrameKind.ControlReply, error.Type, header.RequestId, error.Body);
        }
        await _outgoing.Writer.WriteAsync(refusal).ConfigureAwait(false);
    }

    /// <summary>Waits for a free control slot; false when the session is stopping meanwhile.</summary>
    private async ValueTask<bool> TakeControlSlotAsync()
    {
        if (_controlSlots.Wait(0))
            return true;
        try
        {
            await _controlSlots.WaitAsync(_stopping.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static FrameHeader ParseHeader(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> bytes = stackalloc byte[FrameHeader.Size];
        buffer.Slice(0, FrameHeader.Size).CopyTo(bytes);
        return FrameHeader.Parse(bytes);
    }

    private bool IsAcceptable(in FrameHeader header, bool greeted) => header.Kind switch
    {
        FrameKind.Hello => !greeted && header.BodyLength == HelloFrame.Size,
        FrameKind.Read => greeted && _server.AllowsReads && header.BodyLength == ReadFrame.Size,
        FrameKind.Control => greeted && header.BodyLength <= ControlTypes.MaxBodyBytes,
        _ => false,
    };

    private async ValueTask<bool> AnswerHelloAsync(ReadOnlySequence<byte> body)
    {
        Span<byte> bytes = stackalloc byte[HelloFrame.Size];
        body.CopyTo(bytes);
        var hello = HelloFrame.Parse(bytes);
        var accepted = hello.Magic == HelloFrame.FabricMagic && hello.Version == HelloFrame.CurrentVersion;
        var reply = new HelloFrame(HelloFrame.FabricMagic, HelloFrame.CurrentVersion,
            accepted ? HelloFrame.StatusOk : HelloFrame.StatusVersionRefused, _server.Generation);
        var replyBytes = new byte[HelloFrame.Size];
        reply.Write(replyBytes);
        await _outgoing.Writer.WriteAsync(Outgoing.Control(FrameKind.HelloReply, 0, 0, replyBytes)).ConfigureAwait(false);
        return accepted;
    }

    private ValueTask AnswerReadAsync(ulong requestId, ReadOnlySequence<byte> body)
    {
        Span<byte> bytes = stackalloc byte[ReadFrame.Size];
        body.CopyTo(bytes);
        var read = ReadFrame.Parse(bytes);
        var region = _server.Store.Find(read.RegionId);
        var status = region is null ? ReadStatus.UnknownRegion : region.Check(read.Key, read.Offset, read.Length);
        if (status == ReadStatus.Ok && !_server.Authorizes(Session, region!))
            status = ReadStatus.AccessDenied;
        var reply = status == ReadStatus.Ok
            ? new Outgoing(FrameKind.ReadReply, status, 0, requestId, AddressOf(region!, read.Offset), read.Length, default)
            : new Outgoing(FrameKind.ReadReply, status, 0, requestId, 0, 0, default);
        return _outgoing.Writer.TryWrite(reply) ? default : _outgoing.Writer.WriteAsync(reply);
    }

    private static unsafe nint AddressOf(ExportedRegion region, long offset) => (nint)(region.BaseAddress + offset);

    private static unsafe void CopyNative(nint source, Span<byte> destination) =>
        new ReadOnlySpan<byte>((void*)source, destination.Length).CopyTo(destination);

    private static unsafe Memory<byte> View(NativeSlice slice, nint source, int length) => slice.Set((byte*)source, length);

    private async Task AnswerControlAsync(FrameHeader header, byte[] body)
    {
        try
        {
            var reply = await ControlDispatcher.AnswerAsync(Session, _server.Store, _server.Options, _server.Authorizes,
                new ControlMessage(header.Type, body), _stopping.Token).ConfigureAwait(false);
            if (reply.Body.Length > ControlTypes.MaxBodyBytes)
                reply = ControlDispatcher.Error(ControlErrorCode.Internal, $"The reply to control message type {header.Type} is larger than {ControlTypes.MaxBodyBytes} bytes.");
            await _outgoing.Writer.WriteAsync(Outgoing.Control(FrameKind.ControlReply, reply.Type, header.RequestId, reply.Body) with { HoldsSlot = true }).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            // The session closed before the reply could be queued; its slot is freed here instead of by the send loop.
            _controlSlots.Release();
        }
        finally
        {
            if (Interlocked.Decrement(ref _activeControls) == 0)
                _controlsDone.TrySetResult();
        }
    }

    private async Task SendAsync()
    {
        var batch = GC.AllocateUninitializedArray<byte>(BatchBytes, pinned: true);
        var slice = new NativeSlice();
        var used = 0;
        var reader = _outgoing.Reader;
        var broken = false;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var reply))
            {
                // A control reply gives its slot back as the send loop takes it, so at most MaxInFlightControls wait queued.
                if (reply.HoldsSlot)
                    _controlSlots.Release();
                if (broken)
                    continue;
                try
                {
                    var payload = reply.PayloadLength;
                    if (used + FrameHeader.Size + Math.Min(payload, SmallPayloadBytes) > BatchBytes)
                    {
                        await SendAllAsync(batch.AsMemory(0, used)).ConfigureAwait(false);
                        used = 0;
                    }
                    new FrameHeader((uint)payload, reply.Kind, (byte)reply.Status, reply.Type, reply.RequestId).Write(batch.AsSpan(used));
                    used += FrameHeader.Size;
                    if (payload <= SmallPayloadBytes)
                    {
                        if (reply.Source != 0)
                            CopyNative(reply.Source, batch.AsSpan(used, payload));
                        else
                            reply.Body.Span.CopyTo(batch.AsSpan(used));
                        used += payload;
                    }
                    else
                    {
                        var lead = Math.Min(SmallPayloadBytes, BatchBytes - used);
                        if (reply.Source != 0)
                            CopyNative(reply.Source, batch.AsSpan(used, lead));
                        else
                            reply.Body.Span[..lead].CopyTo(batch.AsSpan(used));
                        await SendAllAsync(batch.AsMemory(0, used + lead)).ConfigureAwait(false);
                        used = 0;
                        await SendAllAsync(reply.Source != 0 ? View(slice, reply.Source + lead, payload - lead) : reply.Body[lead..]).ConfigureAwait(false);
                    }
                    if (reply.Kind == FrameKind.ReadReply)
                        Account(reply.Status, payload);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    broken = true;
                    Abort();
                }
            }
            if (used > 0 && !broken)
            {
                try
                {
                    await SendAllAsync(batch.AsMemory(0, used)).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    broken = true;
                    Abort();
                }
            }
            used = 0;
        }
    }

    private void Account(ReadStatus status, int bytes)
    {
        if (status == ReadStatus.Ok)
            Session.CountRead(bytes);
        else
            Session.CountRefused();
        try
        {
            _server.Options.ReadServed?.Invoke(Session, status, bytes);
        }
#pragma warning disable CA1031 // A metrics callback must not break the session.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _server.Logger.LogError(e, "The ReadServed callback failed for session {Session}", Session.Id);
        }
    }

    /// <summary>Sends every byte; completes synchronously (allocating nothing) while the socket buffer has room.</summary>
    private ValueTask SendAllAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var sending = _socket.SendAsync(bytes, SocketFlags.None);
            if (!sending.IsCompletedSuccessfully)
                return SendRestAsync(sending, bytes);
            bytes = bytes[sending.Result..];
        }
        return default;
    }

    private async ValueTask SendRestAsync(ValueTask<int> sending, ReadOnlyMemory<byte> bytes)
    {
        bytes = bytes[await sending.ConfigureAwait(false)..];
        while (!bytes.IsEmpty)
            bytes = bytes[await _socket.SendAsync(bytes, SocketFlags.None).ConfigureAwait(false)..];
    }

    /// <summary>One reply for the send loop: a read payload (a region range) or a control body.</summary>
    [StructLayout(LayoutKind.Auto)]
    private readonly struct Outgoing(FrameKind kind, ReadStatus status, ushort type, ulong requestId, nint source, int sourceLength, ReadOnlyMemory<byte> body)
    {
        public FrameKind Kind { get; } = kind;
        public ReadStatus Status { get; } = status;
        public ushort Type { get; } = type;
        public ulong RequestId { get; } = requestId;
        public nint Source { get; } = source;
        public int SourceLength { get; } = sourceLength;
        public ReadOnlyMemory<byte> Body { get; } = body;

        /// <summary>Whether this reply holds one of the session's control slots.</summary>
        public bool HoldsSlot { get; init; }

        public int PayloadLength => Source != 0 ? SourceLength : Body.Length;

        public static Outgoing Control(FrameKind kind, ushort type, ulong requestId, ReadOnlyMemory<byte> body) =>
            new(kind, ReadStatus.Ok, type, requestId, 0, 0, body);
    }
}
