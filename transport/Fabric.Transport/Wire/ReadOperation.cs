using System.Threading.Tasks.Sources;

namespace Fabric.Transport.Wire;

/// <summary>
/// One pooled in-flight read. Its state word holds (request id &lt;&lt; 2 | phase) so that a late reply, a timeout and a
/// cancellation race safely by compare-and-swap: exactly one of them ends the read, and a reply for an earlier use
/// of the slot never matches.
/// </summary>
internal sealed class ReadOperation : IValueTaskSource<ReadStatus>, IThreadPoolWorkItem
{
    private const long Idle = 0;
    private const long Pending = 1;
    private const long Receiving = 2;

    private readonly Action<ReadOperation> _return;
    // Continuations run on the thread pool, never on the receive loop; the operation queues itself (no allocation).
    private ManualResetValueTaskSourceCore<ReadStatus> _core = new() { RunContinuationsAsynchronously = false };
    private ReadStatus _result;
    private long _state;
    private CancellationTokenRegistration _cancellation;

    public ReadOperation(int index, Action<ReadOperation> returnToPool)
    {
        Index = index;
        _return = returnToPool;
    }

    public int Index { get; }

    /// <summary>Where the payload goes; the caller's memory.</summary>
    public Memory<byte> Destination { get; private set; }

    /// <summary>Environment.TickCount64 after which the read times out.</summary>
    public long Deadline { get; private set; }

    public short Version => _core.Version;

    /// <summary>The id of the read in flight, or -1 when none is pending.</summary>
    public long PendingId
    {
        get
        {
            var state = Volatile.Read(ref _state);
            return (state & 3) == Pending ? state >> 2 : -1;
        }
    }

    public void Start(ulong requestId, Memory<byte> destination, long deadline, CancellationToken cancellationToken)
    {
        Destination = destination;
        Deadline = deadline;
        Volatile.Write(ref _state, ((long)requestId << 2) | Pending);
        if (cancellationToken.CanBeCanceled)
            _cancellation = cancellationToken.UnsafeRegister(static (state, token) => ((ReadOperation)state!).Cancel(token), this);
    }

    /// <summary>The receive loop takes the read to fill its destination; false when it already ended (timeout, cancel).</summary>
    public bool TryClaim(ulong requestId) =>
        Interlocked.CompareExchange(ref _state, ((long)requestId << 2) | Receiving, ((long)requestId << 2) | Pending) == (((long)requestId << 2) | Pending);

    /// <summary>Ends a pending (not yet claimed) read with <paramref name="status"/>.</summary>
    public bool TryFinish(ulong requestId, ReadStatus status) => TryEnd(requestId, Pending, status);

    /// <summary>Ends a claimed read.</summary>
    public void FinishClaimed(ulong requestId, ReadStatus status) => TryEnd(requestId, Receiving, status);

    private bool TryEnd(ulong requestId, long phase, ReadStatus status)
    {
        var expected = ((long)requestId << 2) | phase;
        if (Interlocked.CompareExchange(ref _state, Idle, expected) != expected)
            return false;
        _result = status;
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        return true;
    }

    void IThreadPoolWorkItem.Execute() => _core.SetResult(_result);

    private void Cancel(CancellationToken token)
    {
        var state = Volatile.Read(ref _state);
        if ((state & 3) != Pending || Interlocked.CompareExchange(ref _state, Idle, state) != state)
            return;
        // Runs on the canceller's thread: hop so the caller's continuation never runs inside Cancel().
        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Item1._core.SetException(new OperationCanceledException(s.Item2)), (this, token), preferLocal: false);
    }

    public ReadStatus GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _cancellation.Dispose();
            _cancellation = default;
            Destination = default;
            _core.Reset();
            _return(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
