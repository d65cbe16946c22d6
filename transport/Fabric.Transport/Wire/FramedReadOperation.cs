namespace Fabric.Transport.Wire;

/// <summary>
/// One slot of a <see cref="FramedClient"/>'s read pool. Its state word holds (request id &lt;&lt; 2 | phase) so that a
/// late reply, a timeout and a cancellation race safely by compare-and-swap: exactly one of them ends the read, and a
/// reply for an earlier use of the slot never matches.
/// </summary>
internal sealed class FramedReadOperation : PooledReadOperation, IThreadPoolWorkItem
{
    private const long Idle = 0;
    private const long Pending = 1;
    private const long Receiving = 2;

    private readonly Action<FramedReadOperation> _return;
    private ReadStatus _result;
    private long _state;

    // Continuations run on the thread pool, never on the receive loop; the operation queues itself (no allocation).
    public FramedReadOperation(int index, Action<FramedReadOperation> returnToPool)
        : base(runContinuationsAsynchronously: false)
    {
        Index = index;
        _return = returnToPool;
    }

    public int Index { get; }

    /// <summary>Where the payload goes; the caller's memory.</summary>
    public Memory<byte> Destination { get; private set; }

    /// <summary>Environment.TickCount64 after which the read times out.</summary>
    public long Deadline { get; private set; }

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
        WatchCancellation(cancellationToken);
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

    void IThreadPoolWorkItem.Execute() => SetResult(_result);

    protected override void OnCancellationRequested(CancellationToken token)
    {
        var state = Volatile.Read(ref _state);
        if ((state & 3) != Pending || Interlocked.CompareExchange(ref _state, Idle, state) != state)
            return;
        // Runs on the canceller's thread: hop so the caller's continuation never runs inside CancellationTokenSource.Cancel().
        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Operation.SetCanceled(s.Token), (Operation: this, Token: token), preferLocal: false);
    }

    protected override void ReturnToPool()
    {
        Destination = default;
        _return(this);
    }
}
