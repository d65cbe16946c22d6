using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Fabric.Transport.Wire;

/// <summary>
/// The client end of a framed connection: control calls and (for tcp) multiplexed one-sided reads. Requests go out
/// under a lock straight to the socket (they are small and bounded by the slot pool, so the kernel buffer never
/// fills); one receive loop reads replies and receives large payloads straight into the caller's destination.
/// </summary>
internal sealed class FramedClient : IAsyncDisposable
{
    /// <summary>Reads in flight at most; more wait for a free slot.</summary>
    public const int MaxInFlight = 1024;
    private const int SlotBits = 10;
    private const ulong SlotMask = (1UL << SlotBits) - 1;
    private const ulong ControlIdBit = 1UL << 61;

    /// <summary>Payload still to come beyond this many bytes is received straight into the destination.</summary>
    private const int DirectReceiveBytes = 32 * 1024;
    private const int ReceiveBufferBytes = 256 * 1024;
    private const int RequestFrameBytes = FrameHeader.Size + ReadFrame.Size;

    private readonly Socket _socket;
    private readonly Lock _sendLock = new();
    private readonly FramedReadOperation[] _operations;
    private readonly int[] _free;
    private readonly Lock _freeLock = new();
    private readonly SemaphoreSlim _slots;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<ControlMessage>> _calls = new();
    private readonly byte[] _receive = GC.AllocateUninitializedArray<byte>(ReceiveBufferBytes, pinned: true);
    private readonly long _timeoutMs;
    private Timer? _timeouts;
    private Task _receiveLoop = Task.CompletedTask;
    private int _freeCount;
    private long _nextSequence;
    private long _nextCall;
    private int _start;
    private int _end;
    private volatile bool _connected = true;

    private FramedClient(Socket socket, FabricEndpoint endpoint, FabricClientOptions options)
    {
        _socket = socket;
        Endpoint = endpoint;
        Options = options;
        _timeoutMs = options.OperationTimeout > TimeSpan.Zero ? (long)Math.Min(options.OperationTimeout.TotalMilliseconds, long.MaxValue / 4) : long.MaxValue / 4;
        _operations = new FramedReadOperation[MaxInFlight];
        _free = new int[MaxInFlight];
        for (var i = 0; i < MaxInFlight; i++)
        {
            _operations[i] = new FramedReadOperation(i, Return);
            _free[i] = MaxInFlight - 1 - i;
        }
        _freeCount = MaxInFlight;
        _slots = new SemaphoreSlim(MaxInFlight, MaxInFlight);
    }

    public FabricEndpoint Endpoint { get; }
    public FabricClientOptions Options { get; }
    public bool IsConnected => _connected;

    /// <summary>The generation the server announced in its handshake (the shm file's; 0 for tcp).</summary>
    public ulong Generation { get; private set; }

    /// <summary>
    /// Connects to <paramref name="remote"/>, exchanges the handshake and starts the receive loop. Failures are
    /// <see cref="EndpointException"/>s that name <paramref name="endpoint"/>.
    /// </summary>
    public static Task<FramedClient> ConnectAsync(EndPoint remote, FabricEndpoint endpoint, FabricClientOptions options, CancellationToken cancellationToken) =>
        ConnectAsync(remote, endpoint, options, beforeHandshake: null, cancellationToken);

    /// <summary>
    /// As above; <paramref name="beforeHandshake"/> runs on the connected socket, with the rest of the connect
    /// timeout, before the hello (the shm client receives the server's memory file there). Its
    /// <see cref="IOException"/> fails the connect like a broken handshake.
    /// </summary>
    public static async Task<FramedClient> ConnectAsync(EndPoint remote, FabricEndpoint endpoint, FabricClientOptions options, Action<Socket, TimeSpan>? beforeHandshake, CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var tcp = remote is not UnixDomainSocketEndPoint;
        var socket = tcp ? new Socket(SocketType.Stream, ProtocolType.Tcp) : new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        if (tcp)
            Tune(socket);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(remote, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            var why = e is SocketException se ? Describe(se) : $"no answer within {options.ConnectTimeout.TotalSeconds:0.#} s";
            throw new EndpointException($"Cannot connect to {endpoint}: {why}.", e);
        }

        var client = new FramedClient(socket, endpoint, options);
        try
        {
            beforeHandshake?.Invoke(socket, options.ConnectTimeout - System.Diagnostics.Stopwatch.GetElapsedTime(started));
            await client.HandshakeAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            socket.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            throw new EndpointException($"Cannot connect to {endpoint}: the server did not complete the handshake.", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        client._receiveLoop = client.ReceiveLoopAsync();
        var period = TimeSpan.FromMilliseconds(Math.Clamp(client._timeoutMs / 8, 5, 250));
        client._timeouts = new Timer(static state => ((FramedClient)state!).ExpireTimedOut(), client, period, period);
        return client;
    }

    internal static void Tune(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = 4 * 1024 * 1024;
        socket.ReceiveBufferSize = 4 * 1024 * 1024;
    }

    private static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "the connection was refused (is a server listening there?)",
        SocketError.HostNotFound or SocketError.NoData => "the host name does not resolve",
        SocketError.AddressNotAvailable => "the address is not available on this machine",
        SocketError.TimedOut => "the connection timed out",
        SocketError.AccessDenied => "permission denied",
        _ => e.Message.TrimEnd('.'),
    };

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        var hello = new byte[FrameHeader.Size + HelloFrame.Size];
        new FrameHeader(HelloFrame.Size, FrameKind.Hello, 0, 0, 0).Write(hello);
        new HelloFrame(HelloFrame.FabricMagic, HelloFrame.CurrentVersion, HelloFrame.StatusOk, 0).Write(hello.AsSpan(FrameHeader.Size));
        await _socket.SendAsync(hello, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        await FillAsync(FrameHeader.Size + HelloFrame.Size, cancellationToken).ConfigureAwait(false);
        var header = FrameHeader.Parse(_receive.AsSpan(_start));
        var reply = HelloFrame.Parse(_receive.AsSpan(_start + FrameHeader.Size));
        if (header.Kind != FrameKind.HelloReply || header.BodyLength != HelloFrame.Size || reply.Magic != HelloFrame.FabricMagic)
            throw new EndpointException($"Cannot connect to {Endpoint}: the peer does not speak the Fabric protocol.");
        if (reply.Status != HelloFrame.StatusOk || reply.Version != HelloFrame.CurrentVersion)
            throw new EndpointException($"Cannot connect to {Endpoint}: the server speaks protocol version {reply.Version}, this client {HelloFrame.CurrentVersion}.");
        Generation = reply.Generation;
        _start += FrameHeader.Size + HelloFrame.Size;
    }

    // ---- reads ----

    public ValueTask<ReadStatus> ReadAsync(in ReadRequest request, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled<ReadStatus>(cancellationToken);
        if (!_connected)
            return new ValueTask<ReadStatus>(ReadStatus.PeerGone);
        if (!_slots.Wait(0))
            return WaitThenReadAsync(request, cancellationToken);
        Span<byte> frame = stackalloc byte[RequestFrameBytes];
        var (operation, id) = Begin(request, frame, cancellationToken);
        if (!Send(frame))
            operation.TryFinish(id, ReadStatus.PeerGone);
        return new ValueTask<ReadStatus>(operation, operation.Version);
    }

    private async ValueTask<ReadStatus> WaitThenReadAsync(ReadRequest request, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        var frame = new byte[RequestFrameBytes];
        var (operation, id) = Begin(request, frame, cancellationToken);
        if (!Send(frame))
            operation.TryFinish(id, ReadStatus.PeerGone);
        return await new ValueTask<ReadStatus>(operation, operation.Version).ConfigureAwait(false);
    }

    /// <summary>Takes a slot (already counted by the semaphore), arms it and writes its request frame.</summary>
    private (FramedReadOperation Operation, ulong Id) Begin(in ReadRequest request, Span<byte> frame, CancellationToken cancellationToken)
    {
        FramedReadOperation operation;
        lock (_freeLock)
            operation = _operations[_free[--_freeCount]];
        var id = ((ulong)Interlocked.Increment(ref _nextSequence) << SlotBits) | (uint)operation.Index;
        new FrameHeader(ReadFrame.Size, FrameKind.Read, 0, 0, id).Write(frame);
        new ReadFrame(request.RegionId, request.Length, request.Key, request.Offset).Write(frame[FrameHeader.Size..]);
        operation.Start(id, request.Destination, Environment.TickCount64 + _timeoutMs, cancellationToken);
        if (!_connected)
            operation.TryFinish(id, ReadStatus.PeerGone);
        return (operation, id);
    }

    private void Return(FramedReadOperation operation)
    {
        lock (_freeLock)
            _free[_freeCount++] = operation.Index;
        _slots.Release();
    }

    /// <summary>Sends every request of the list in as few socket writes as possible, then waits for all.</summary>
    public async ValueTask ReadBatchAsync(ReadOnlyMemory<ReadRequest> requests, Memory<ReadStatus> statuses, CancellationToken cancellationToken)
    {
        if (statuses.Length < requests.Length)
            throw new ArgumentException($"The status list holds {statuses.Length} entries but {requests.Length} reads were asked for.", nameof(statuses));
        var count = requests.Length;
        var pending = ArrayPool<ValueTask<ReadStatus>>.Shared.Rent(count);
        var frames = ArrayPool<byte>.Shared.Rent(Math.Min(count, 512) * RequestFrameBytes);
        var issued = 0;
        try
        {
            var used = 0;
            for (; issued < count; issued++)
            {
                var request = requests.Span[issued];
                if (cancellationToken.IsCancellationRequested || !_connected)
                {
                    pending[issued] = cancellationToken.IsCancellationRequested
                        ? ValueTask.FromCanceled<ReadStatus>(cancellationToken)
                        : new ValueTask<ReadStatus>(ReadStatus.PeerGone);
                    continue;
                }
                if (used + RequestFrameBytes > frames.Length || !_slots.Wait(0))
                {
                    Send(frames.AsSpan(0, used));
                    used = 0;
                    if (!_slots.Wait(0))
                    {
                        try
                        {
                            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                            pending[issued] = ValueTask.FromCanceled<ReadStatus>(cancellationToken);
                            continue;
                        }
                    }
                }
                var (operation, _) = Begin(request, frames.AsSpan(used, RequestFrameBytes), cancellationToken);
                used += RequestFrameBytes;
                pending[issued] = new ValueTask<ReadStatus>(operation, operation.Version);
            }
            // A failed send surfaces as PeerGone through the receive loop's sweep.
            Send(frames.AsSpan(0, used));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frames);
        }
        await ReadBatch.AwaitAllAsync(pending, issued, statuses, cancellationToken).ConfigureAwait(false);
    }

    private bool Send(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
            return true;
        try
        {
            lock (_sendLock)
            {
                while (!bytes.IsEmpty)
                    bytes = bytes[_socket.Send(bytes, SocketFlags.None)..];
            }
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            _socket.Dispose();
            return false;
        }
    }

    private void ExpireTimedOut()
    {
        var now = Environment.TickCount64;
        foreach (var operation in _operations)
        {
            var id = operation.PendingId;
            if (id >= 0 && now > operation.Deadline)
                operation.TryFinish((ulong)id, ReadStatus.TimedOut);
        }
    }

    // ---- control ----

    public async Task<ControlMessage> CallAsync(ControlMessage request, CancellationToken cancellationToken)
    {
        if (request.Body.Length > ControlTypes.MaxBodyBytes)
            throw new ArgumentException($"A control message body holds at most {ControlTypes.MaxBodyBytes} bytes; this one has {request.Body.Length}.", nameof(request));
        if (!_connected)
            throw new PeerGoneException($"The connection to {Endpoint} is closed.");
        var id = ControlIdBit | unchecked((ulong)Interlocked.Increment(ref _nextCall));
        var reply = new TaskCompletionSource<ControlMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        _calls[id] = reply;
        try
        {
            if (!_connected)
                throw new PeerGoneException($"The connection to {Endpoint} is closed.");
            var frame = new byte[FrameHeader.Size + request.Body.Length];
            new FrameHeader((uint)request.Body.Length, FrameKind.Control, 0, request.Type, id).Write(frame);
            request.Body.Span.CopyTo(frame.AsSpan(FrameHeader.Size));
            if (!Send(frame))
                throw new PeerGoneException($"The connection to {Endpoint} was lost while sending control message type {request.Type}.");
            ControlMessage answer;
            try
            {
                answer = await reply.Task.WaitAsync(TimeSpan.FromMilliseconds(Math.Min(_timeoutMs, uint.MaxValue - 1)), cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"{Endpoint} did not answer control message type {request.Type} within {Options.OperationTimeout.TotalSeconds:0.###} s.");
            }
            if (answer.Type == ControlTypes.Error)
                throw Control.ControlDispatcher.ToException(answer);
            return answer;
        }
        finally
        {
            _calls.TryRemove(id, out _);
        }
    }

    // ---- receive loop ----

    /// <summary>
    /// Reads replies until the connection ends. One method on purpose: its state machine is boxed once, so waiting for
    /// the socket allocates nothing per read.
    /// </summary>
    private async Task ReceiveLoopAsync()
    {
        await Task.Yield();
        FramedReadOperation? receiving = null;
        ulong receivingId = 0;
        try
        {
            while (true)
            {
                while (_end - _start < FrameHeader.Size)
                {
                    Compact();
                    var got = await _socket.ReceiveAsync(_receive.AsMemory(_end), SocketFlags.None).ConfigureAwait(false);
                    if (got == 0)
                        return;
                    _end += got;
                }
                var header = FrameHeader.Parse(_receive.AsSpan(_start));
                _start += FrameHeader.Size;

                // Decide where the body goes: a claimed read's destination, a control reply's new array, or nowhere.
                Memory<byte> destination = default;
                FramedReadOperation? operation = null;
                byte[]? controlBody = null;
                if (header.Kind == FrameKind.ReadReply)
                {
                    operation = _operations[header.RequestId & SlotMask];
                    var status = (ReadStatus)header.Status;
                    if (status != ReadStatus.Ok)
                    {
                        if (header.BodyLength != 0 || status > ReadStatus.Failed)
                            return;
                        operation.TryFinish(header.RequestId, status);
                        continue;
                    }
                    if (operation.TryClaim(header.RequestId))
                    {
                        (receiving, receivingId) = (operation, header.RequestId);
                        if (header.BodyLength != (uint)operation.Destination.Length)
                            return;
                        destination = operation.Destination;
                    }
                    else
                    {
                        operation = null;
                        if (header.BodyLength > int.MaxValue)
                            return;
                    }
                }
                else if (header.Kind == FrameKind.ControlReply && header.BodyLength <= ControlTypes.MaxBodyBytes)
                {
                    controlBody = new byte[header.BodyLength];
                    destination = controlBody;
                }
                else
                {
                    return;
                }

                var length = (int)header.BodyLength;
                var discard = destination.IsEmpty;
                var done = 0;
                while (done < length)
                {
                    var buffered = Math.Min(_end - _start, length - done);
                    if (buffered > 0)
                    {
                        if (!discard)
                            _receive.AsSpan(_start, buffered).CopyTo(destination.Span[done..]);
                        _start += buffered;
                        done += buffered;
                        continue;
                    }
                    int got;
                    if (!discard && length - done >= DirectReceiveBytes)
                    {
                        got = await _socket.ReceiveAsync(destination[done..length], SocketFlags.None).ConfigureAwait(false);
                        done += got;
                    }
                    else
                    {
                        Compact();
                        got = await _socket.ReceiveAsync(_receive.AsMemory(_end), SocketFlags.None).ConfigureAwait(false);
                        _end += got;
                    }
                    if (got == 0)
                        return;
                }

                if (operation is not null)
                {
                    receiving = null;
                    operation.FinishClaimed(header.RequestId, ReadStatus.Ok);
                }
                else if (controlBody is not null && _calls.TryRemove(header.RequestId, out var call))
                {
                    call.TrySetResult(new ControlMessage(header.Type, controlBody));
                }
            }
        }
#pragma warning disable CA1031 // Whatever ends the loop, every pending read must hear PeerGone rather than hang.
        catch (Exception e)
#pragma warning restore CA1031
        {
            if (e is SocketException or ObjectDisposedException or OperationCanceledException)
                Options.Logger?.LogDebug("The connection to {Endpoint} ended: {Reason}", Endpoint, e.Message);
            else
                Options.Logger?.LogError(e, "The receive loop of the connection to {Endpoint} failed; every pending read ends with PeerGone", Endpoint);
        }
        finally
        {
            receiving?.FinishClaimed(receivingId, ReadStatus.PeerGone);
            Disconnect();
        }
    }

    /// <summary>Moves buffered bytes to the front so a receive has room.</summary>
    private void Compact()
    {
        if (_start == 0)
            return;
        _receive.AsSpan(_start, _end - _start).CopyTo(_receive);
        _end -= _start;
        _start = 0;
    }

    /// <summary>Ensures <paramref name="count"/> bytes are buffered; false on a clean end of stream before any of them.</summary>
    private async ValueTask<bool> TryFillAsync(int count, CancellationToken cancellationToken)
    {
        if (_end - _start >= count)
            return true;
        if (_start > 0)
        {
            _receive.AsSpan(_start, _end - _start).CopyTo(_receive);
            _end -= _start;
            _start = 0;
        }
        while (_end - _start < count)
        {
            var received = await _socket.ReceiveAsync(_receive.AsMemory(_end), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (received == 0)
                return false;
            _end += received;
        }
        return true;
    }

    private async Task FillAsync(int count, CancellationToken cancellationToken)
    {
        if (!await TryFillAsync(count, cancellationToken).ConfigureAwait(false))
            throw new IOException("The peer closed the connection.");
    }

    private void Disconnect()
    {
        _connected = false;
        _timeouts?.Dispose();
        _socket.Dispose();
        foreach (var operation in _operations)
        {
            var id = operation.PendingId;
            if (id >= 0)
                operation.TryFinish((ulong)id, ReadStatus.PeerGone);
        }
        foreach (var (id, call) in _calls)
        {
            if (_calls.TryRemove(id, out _))
                call.TrySetException(new PeerGoneException($"The connection to {Endpoint} was lost before it answered."));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _connected = false;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed by the peer: there is nothing left to shut down.
        }
        _socket.Dispose();
        await _receiveLoop.ConfigureAwait(false);
        Disconnect();
    }
}
