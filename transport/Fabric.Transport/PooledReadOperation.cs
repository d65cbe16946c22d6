using System.Threading.Tasks.Sources;

namespace Fabric.Transport;

/// <summary>
/// One read in flight, awaited as a <see cref="ValueTask{ReadStatus}"/> and reused from its backend's pool so that
/// nothing is allocated per read. A backend subclasses it with the state its data path needs, watches the caller's
/// token with <see cref="WatchCancellation"/>, ends the read once with <see cref="SetResult"/> or
/// <see cref="SetCanceled"/>, and takes it back in <see cref="ReturnToPool"/>, which runs once the awaiter has its
/// result and the operation is ready for its next use.
/// </summary>
public abstract class PooledReadOperation : IValueTaskSource<ReadStatus>
{
    private ManualResetValueTaskSourceCore<ReadStatus> _core;
    private CancellationTokenRegistration _cancellation;

    /// <param name="runContinuationsAsynchronously">
    /// Queue the awaiter's continuation to the thread pool when the read ends; false runs it on the thread that ends
    /// the read (the backend then chooses that thread).
    /// </param>
    protected PooledReadOperation(bool runContinuationsAsynchronously) =>
        _core.RunContinuationsAsynchronously = runContinuationsAsynchronously;

    /// <summary>The token of the current use: pair it with this operation in a <see cref="ValueTask{ReadStatus}"/>.</summary>
    public short Version => _core.Version;

    /// <summary>Calls <see cref="OnCancellationRequested"/> when <paramref name="token"/> is cancelled, until the awaiter has the result.</summary>
    protected void WatchCancellation(CancellationToken token)
    {
        if (token.CanBeCanceled)
            _cancellation = token.UnsafeRegister(static (state, token) => ((PooledReadOperation)state!).OnCancellationRequested(token), this);
    }

    /// <summary>Stops watching the token; waits for a callback already running on another thread.</summary>
    protected void StopWatchingCancellation()
    {
        _cancellation.Dispose();
        _cancellation = default;
    }

    /// <summary>The watched token was cancelled; runs on the cancelling thread, and may race the read's end.</summary>
    protected abstract void OnCancellationRequested(CancellationToken token);

    /// <summary>Ends the read with <paramref name="status"/>; at most once per use.</summary>
    protected void SetResult(ReadStatus status) => _core.SetResult(status);

    /// <summary>Ends the read with an <see cref="OperationCanceledException"/> for <paramref name="token"/>; at most once per use.</summary>
    protected void SetCanceled(CancellationToken token) => _core.SetException(new OperationCanceledException(token));

    /// <summary>The awaiter has the result and the operation is reset: give it back to its pool.</summary>
    protected abstract void ReturnToPool();

    public ReadStatus GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            StopWatchingCancellation();
            _core.Reset();
            ReturnToPool();
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
