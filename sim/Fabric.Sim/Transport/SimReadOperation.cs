using System.Threading.Tasks.Sources;
using Fabric.Transport;

namespace Fabric.Sim.Transport;

/// <summary>
/// One simulated read, pooled and reused: the caller awaits it as a <see cref="ValueTask{ReadStatus}"/>; the world's
/// loop thread completes it when its flow delivers the last byte (then copies the bytes), or the caller's timeout,
/// cancellation or a dying server ends it first. Exactly one of them wins (<see cref="TryClaim"/>).
/// </summary>
internal sealed class SimReadOperation : IValueTaskSource<ReadStatus>, IThreadPoolWorkItem
{
    private ManualResetValueTaskSourceCore<ReadStatus> _core = new() { RunContinuationsAsynchronously = true };
    private int _claimed;
    private int _references;
    private CancellationTokenRegistration _cancellation;

    public SimFabricClient Client = null!;
    public ReadRequest Request;
    public ExportedRegion Region = null!;
    public long DeadlineTicks;
    public int Id = -1;

    public short Version => _core.Version;

    /// <summary>Prepares a fresh use held by two parties: the caller (until GetResult) and the world (until its flow ends).</summary>
    public void Reset(SimFabricClient client, in ReadRequest request, long deadlineTicks)
    {
        _core.Reset();
        _claimed = 0;
        _references = 2;
        Client = client;
        Request = request;
        DeadlineTicks = deadlineTicks;
    }

    public void WatchCancellation(CancellationToken token)
    {
        if (token.CanBeCanceled)
            _cancellation = token.UnsafeRegister(static s => ((SimReadOperation)s!).Cancel(), this);
    }

    /// <summary>True for the one party that may end the read.</summary>
    public bool TryClaim() => Interlocked.Exchange(ref _claimed, 1) == 0;

    public bool IsClaimed => Volatile.Read(ref _claimed) != 0;

    /// <summary>Ends the read (after <see cref="TryClaim"/>).</summary>
    public void Complete(ReadStatus status)
    {
        _cancellation.Dispose();
        _cancellation = default;
        Client.Forget(this);
        _core.SetResult(status);
    }

    private void Cancel()
    {
        if (!TryClaim())
            return;
        Client.Forget(this);
        _core.SetException(new OperationCanceledException("The read was cancelled."));
    }

    /// <summary>The flow of this read finished (or never started); drops the world's reference.</summary>
    public void ReleaseFlow() => Release();

    public ReadStatus GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Release();
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
            Client.Fabric.Return(this);
    }

    /// <summary>Runs the server's Authorize off the caller's and the loop's threads (it may block).</summary>
    public void Execute() => Client.AuthorizeAndSubmit(this);
}
