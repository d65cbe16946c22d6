namespace Fabric.Transport.Rdma;

/// <summary>
/// One read in flight on an <see cref="RdmaReadQueue"/>, from the queue's pool. Its fields are guarded by the
/// queue's lock; the work-request id of each of its slices is <see cref="Slot"/>.
/// </summary>
internal sealed class RdmaReadOperation : PooledReadOperation, IThreadPoolWorkItem
{
    private readonly RdmaReadQueue _owner;
    private CancellationToken _token;

    /// <summary>
    /// The continuation always runs where <see cref="Complete"/> is called: on the polling thread for inline
    /// continuations, otherwise on a thread-pool thread that the queue hands this operation to (itself the work item,
    /// so that nothing is allocated per read).
    /// </summary>
    public RdmaReadOperation(RdmaReadQueue owner, int slot)
        : base(runContinuationsAsynchronously: false)
    {
        _owner = owner;
        Slot = slot;
    }

    public int Slot { get; }

    public ulong LocalAddress;
    public uint Lkey;
    public ulong RemoteAddress;
    public uint Rkey;
    public long Length;
    /// <summary>Bytes already handed to the QP as work requests.</summary>
    public long Posted;
    /// <summary>Work requests posted and not yet completed.</summary>
    public int Outstanding;
    /// <summary>The first failure seen; Ok until then.</summary>
    public ReadStatus Status;
    /// <summary>Stopwatch timestamp after which the read counts as timed out.</summary>
    public long Deadline;
    public volatile bool Cancelled;
    /// <summary>True from <see cref="Start"/> until the queue has finished the read.</summary>
    public bool Active;
    public DestinationRegistration? Destination;

    public bool Finished => Outstanding == 0 && (Posted == Length || Status != ReadStatus.Ok || Cancelled);

    public void Start(ulong localAddress, uint lkey, ulong remoteAddress, uint rkey, long length, long deadline, DestinationRegistration? destination, CancellationToken cancellationToken)
    {
        LocalAddress = localAddress;
        Lkey = lkey;
        RemoteAddress = remoteAddress;
        Rkey = rkey;
        Length = length;
        Posted = 0;
        Outstanding = 0;
        Status = ReadStatus.Ok;
        Deadline = deadline;
        Cancelled = false;
        Active = true;
        Destination = destination;
        _token = cancellationToken;
        WatchCancellation(cancellationToken);
    }

    /// <summary>Ends the read once its last work request has completed. Called without the queue's lock held.</summary>
    public void Complete()
    {
        StopWatchingCancellation();
        Destination?.EndUse();
        Destination = null;
        if (Cancelled && _token.IsCancellationRequested)
            SetCanceled(_token);
        else
            SetResult(Status);
    }

    void IThreadPoolWorkItem.Execute() => Complete();

    protected override void OnCancellationRequested(CancellationToken token)
    {
        Cancelled = true;
        _owner.Wake();
    }

    protected override void ReturnToPool()
    {
        _token = default;
        _owner.Return(this);
    }
}
