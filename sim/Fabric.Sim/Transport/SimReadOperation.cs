using Fabric.Transport;

namespace Fabric.Sim.Transport;

/// <summary>
/// One simulated read, pooled and reused: the caller awaits it as a <see cref="ValueTask{ReadStatus}"/>; the world's
/// loop thread completes it when its flow delivers the last byte (then copies the bytes), or the caller's timeout,
/// cancellation or a dying server ends it first. Exactly one of them wins (<see cref="TryClaim"/>).
/// </summary>
internal sealed class SimReadOperation : PooledReadOperation, IThreadPoolWorkItem
{
    private int _claimed;
    private int _references;

    public SimReadOperation()
        : base(runContinuationsAsynchronously: true)
    {
    }

    public SimFabricClient Client = null!;
    public ReadRequest Request;
    public ExportedRegion Region = null!;
    public long DeadlineTicks;
    public int Id = -1;

    /// <summary>Prepares a fresh use held by two parties: the caller (until GetResult) and the world (until its flow ends).</summary>
    public void Reset(SimFabricClient client, in ReadRequest request, long deadlineTicks)
    {
        _claimed = 0;
        _references = 2;
        Client = client;
        Request = request;
        DeadlineTicks = deadlineTicks;
    }

    /// <summary>The read is in its client's pending set: from now on the caller's <paramref name="token"/> may end it.</summary>
    public void Arm(CancellationToken token) => WatchCancellation(token);

    /// <summary>True for the one party that may end the read.</summary>
    public bool TryClaim() => Interlocked.Exchange(ref _claimed, 1) == 0;

    public bool IsClaimed => Volatile.Read(ref _claimed) != 0;

    /// <summary>Ends the read (after <see cref="TryClaim"/>).</summary>
    public void Complete(ReadStatus status)
    {
        StopWatchingCancellation();
        Client.Forget(this);
        SetResult(status);
    }

    protected override void OnCancellationRequested(CancellationToken token)
    {
        if (!TryClaim())
            return;
        Client.Forget(this);
        SetCanceled(token);
    }

    /// <summary>The flow of this read finished (or never started); drops the world's reference.</summary>
    public void ReleaseFlow() => Release();

    protected override void ReturnToPool() => Release();

    private void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
            Client.Fabric.Return(this);
    }

    /// <summary>Runs the server's Authorize off the caller's and the loop's threads (it may block).</summary>
    public void Execute() => Client.AuthorizeAndSubmit(this);
}
