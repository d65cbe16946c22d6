using System.Diagnostics;
using System.Runtime.InteropServices;
using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Rdma;

/// <summary>
/// The data path of one RC queue pair: RDMA READ work requests posted in chains, never more in flight than the send
/// queue holds; reads longer than <see cref="SliceBytes"/> split into slices; one thread polls the completion queue
/// and maps each completion back to its read. Reads, slots and work-request arrays are allocated once and reused.
/// </summary>
internal sealed unsafe class RdmaReadQueue : IDisposable
{
    /// <summary>The largest single work request, in bytes.</summary>
    public const int SliceBytes = 1 << 20;

    private const int PollBatch = 32;
    private static readonly long DeadlineCheckTicks = Stopwatch.Frequency / 100;

    private readonly IbvQp* _qp;
    private readonly delegate*<IbvQp*, int> _moveToError;
    private readonly IbvCq* _cq;
    private readonly int _depth;
    private readonly bool _inlineContinuations;
    private readonly IbvSendWr* _wrs;
    private readonly IbvSge* _sges;
    private readonly Lock _gate = new();
    private readonly Queue<RdmaReadOperation> _unposted = new();
    private readonly Stack<RdmaReadOperation> _idle = new();
    private readonly List<RdmaReadOperation> _all = [];
    private List<RdmaReadOperation> _finished = [];
    private List<RdmaReadOperation> _delivering = [];
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Thread _poller;
    private int _credits;
    private int _busy;
    private volatile bool _stopping;
    private volatile bool _broken;
    private ReadStatus _brokenStatus;
    private string? _brokenReason;
    private bool _disposed;

    /// <param name="qp">The connected RC queue pair; owned by the caller, who destroys it after disposing this queue.</param>
    /// <param name="cq">Its send completion queue, likewise.</param>
    /// <param name="depth">The send queue's capacity in work requests.</param>
    /// <param name="inlineContinuations">Run a read's continuation on the polling thread (lowest latency; the caller must not block there).</param>
    /// <param name="name">The polling thread's name.</param>
    public RdmaReadQueue(IbvQp* qp, IbvCq* cq, int depth, bool inlineContinuations, string name)
        : this(qp, cq, depth, inlineContinuations, name, &MoveToError)
    {
    }

    /// <summary>As the public constructor; <paramref name="moveToError"/> moves the QP to the error state (ibv_modify_qp), and the tests' software provider replaces it.</summary>
    internal RdmaReadQueue(IbvQp* qp, IbvCq* cq, int depth, bool inlineContinuations, string name, delegate*<IbvQp*, int> moveToError)
    {
        _moveToError = moveToError;
        _qp = qp;
        _cq = cq;
        _depth = depth;
        _credits = depth;
        _inlineContinuations = inlineContinuations;
        _wrs = (IbvSendWr*)NativeMemory.AllocZeroed((nuint)depth, (nuint)sizeof(IbvSendWr));
        _sges = (IbvSge*)NativeMemory.AllocZeroed((nuint)depth, (nuint)sizeof(IbvSge));
        _poller = new Thread(PollLoop) { IsBackground = true, Name = name };
        _poller.Start();
    }

    /// <summary>False once a completion failed, the QP was moved to the error state, or the queue was disposed.</summary>
    public bool IsHealthy => !_broken;

    /// <summary>Why the queue broke, naming the verbs status; null while healthy.</summary>
    public string? FailureReason => Volatile.Read(ref _brokenReason);

    public int Depth => _depth;

    /// <summary>True on the completion-polling thread, where inline continuations run.</summary>
    public bool IsPollingThread => Thread.CurrentThread == _poller;

    /// <summary>
    /// Starts one read of <paramref name="length"/> bytes (greater than 0) into <paramref name="localAddress"/>
    /// (registered under <paramref name="lkey"/>) and returns its completion. The caller has checked the range and
    /// holds <paramref name="destination"/> in use; it is released when the read ends.
    /// </summary>
    public ValueTask<ReadStatus> Submit(ulong localAddress, uint lkey, DestinationRegistration? destination, ulong remoteAddress, uint rkey, long length, TimeSpan timeout, CancellationToken cancellationToken)
    {
        RdmaReadOperation op;
        lock (_gate)
        {
            if (_broken || _disposed)
            {
                destination?.EndUse();
                return new ValueTask<ReadStatus>(ReadStatus.PeerGone);
            }
            op = RentLocked();
            var deadline = timeout <= TimeSpan.Zero || timeout == Timeout.InfiniteTimeSpan
                ? long.MaxValue
                : Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
            op.Start(localAddress, lkey, remoteAddress, rkey, length, deadline, destination, cancellationToken);
            _busy++;
            _unposted.Enqueue(op);
            PostLocked();
        }
        _wake.Set();
        return new ValueTask<ReadStatus>(op, op.Version);
    }

    /// <summary>Moves the QP to the error state: every posted work request flushes and every pending read fails with <paramref name="status"/>.</summary>
    public void Break(ReadStatus status, string reason)
    {
        lock (_gate)
            BreakLocked(status, reason);
        _wake.Set();
    }

    public void Wake() => _wake.Set();

    internal void Return(RdmaReadOperation op)
    {
        lock (_gate)
            _idle.Push(op);
    }

    private RdmaReadOperation RentLocked()
    {
        if (_idle.TryPop(out var op))
            return op;
        op = new RdmaReadOperation(this, _all.Count);
        _all.Add(op);
        return op;
    }

    /// <summary>Turns queued reads into work requests while send-queue slots are free, and posts them as one chain.</summary>
    private void PostLocked()
    {
        var count = 0;
        while (count < _credits && _unposted.TryPeek(out var op))
        {
            if (_broken || op.Cancelled)
            {
                _unposted.Dequeue();
                if (op.Status == ReadStatus.Ok && _broken)
                    op.Status = _brokenStatus;
                if (op.Finished)
                    FinishLocked(op);
                continue;
            }
            var slice = (uint)Math.Min(SliceBytes, op.Length - op.Posted);
            var sge = _sges + count;
            sge->Addr = op.LocalAddress + (ulong)op.Posted;
            sge->Length = slice;
            sge->Lkey = op.Lkey;
            var wr = _wrs + count;
            *wr = default;
            wr->WrId = (ulong)op.Slot;
            wr->SgList = sge;
            wr->NumSge = 1;
            wr->Opcode = IbvWrOpcode.RdmaRead;
            wr->SendFlags = IbvSendFlags.Signaled;
            wr->RdmaRemoteAddr = op.RemoteAddress + (ulong)op.Posted;
            wr->RdmaRkey = op.Rkey;
            if (count > 0)
                _wrs[count - 1].Next = wr;
            op.Posted += slice;
            op.Outstanding++;
            count++;
            if (op.Posted == op.Length)
                _unposted.Dequeue();
        }
        if (count == 0)
            return;

        _credits -= count;
        IbvSendWr* bad = null;
        var rc = IbVerbs.PostSend(_qp, _wrs, &bad);
        if (rc == 0)
            return;

        // Work requests from the bad one on were not posted: take them back, then fail everything.
        var posted = bad == null ? 0 : (int)(bad - _wrs);
        for (var i = posted; i < count; i++)
        {
            var op = _all[(int)_wrs[i].WrId];
            op.Outstanding--;
            op.Posted -= _sges[i].Length;
            _credits++;
            if (op.Status == ReadStatus.Ok)
                op.Status = ReadStatus.Failed;
        }
        BreakLocked(ReadStatus.Failed, $"ibv_post_send failed with {Verbs.Describe(rc)}");
        for (var i = posted; i < count; i++)
        {
            var op = _all[(int)_wrs[i].WrId];
            if (op.Active && op.Outstanding == 0)
                FinishLocked(op);
        }
    }

    private void BreakLocked(ReadStatus status, string reason)
    {
        if (_broken)
            return;
        _brokenStatus = status;
        Volatile.Write(ref _brokenReason, reason);
        _broken = true;
        _moveToError(_qp);
        while (_unposted.TryDequeue(out var op))
        {
            if (op.Status == ReadStatus.Ok)
                op.Status = status;
            if (op.Finished)
                FinishLocked(op);
        }
    }

    private static int MoveToError(IbvQp* qp)
    {
        var attr = default(IbvQpAttr);
        attr.QpState = IbvQpState.Err;
        return IbVerbs.ModifyQp(qp, &attr, IbvQpAttrMask.State);
    }

    private void FinishLocked(RdmaReadOperation op)
    {
        if (!op.Active)
            return;
        op.Active = false;
        _busy--;
        _finished.Add(op);
    }

    private void PollLoop()
    {
        var completions = stackalloc IbvWc[PollBatch];
        var spinner = default(SpinWait);
        var nextDeadlineCheck = Stopwatch.GetTimestamp() + DeadlineCheckTicks;
        var stopBy = long.MaxValue;
        while (true)
        {
            if (_stopping && (Volatile.Read(ref _busy) == 0 || Stopwatch.GetTimestamp() > stopBy))
                break;
            if (_stopping && stopBy == long.MaxValue)
                stopBy = Stopwatch.GetTimestamp() + 2 * Stopwatch.Frequency;

            DeliverFinished();
            if (Volatile.Read(ref _busy) == 0 && !_stopping)
            {
                _wake.Reset();
                if (Volatile.Read(ref _busy) == 0 && !_stopping)
                    _wake.Wait(100);
                continue;
            }

            var count = IbVerbs.PollCq(_cq, PollBatch, completions);
            if (count < 0)
            {
                Break(ReadStatus.Failed, $"ibv_poll_cq failed with {count}");
                ForceFinishAll(ReadStatus.Failed);
                DeliverFinished();
                break;
            }
            if (count == 0)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
                var now = Stopwatch.GetTimestamp();
                if (now > nextDeadlineCheck)
                {
                    nextDeadlineCheck = now + DeadlineCheckTicks;
                    CheckDeadlines(now);
                    DeliverFinished();
                }
                continue;
            }

            spinner = default;
            lock (_gate)
            {
                for (var i = 0; i < count; i++)
                    OnCompletionLocked(completions[i]);
                PostLocked();
            }
            DeliverFinished();
        }
    }

    private void OnCompletionLocked(in IbvWc wc)
    {
        _credits++;
        var op = _all[(int)wc.WrId];
        op.Outstanding--;
        if (wc.Status != IbvWcStatus.Success)
        {
            var status = MapFailure(wc.Status);
            if (status == ReadStatus.Failed && _broken)
                status = _brokenStatus;
            if (op.Status == ReadStatus.Ok)
                op.Status = status;
            if (wc.Status != IbvWcStatus.WrFlushErr)
                BreakLocked(status, $"an RDMA READ completed with {Verbs.Describe(wc.Status)}");
            else
                BreakLocked(ReadStatus.Failed, $"an RDMA READ was flushed ({Verbs.Describe(wc.Status)}) because the queue pair is in the error state");
        }
        if (op.Finished)
        {
            // Unposted slices of a failed or cancelled read are dropped from the queue.
            if (op.Posted < op.Length && _unposted.Contains(op))
                RemoveUnposted(op);
            FinishLocked(op);
        }
    }

    private void RemoveUnposted(RdmaReadOperation op)
    {
        for (var i = _unposted.Count; i > 0; i--)
        {
            var next = _unposted.Dequeue();
            if (!ReferenceEquals(next, op))
                _unposted.Enqueue(next);
        }
    }

    private static ReadStatus MapFailure(IbvWcStatus status) => status switch
    {
        IbvWcStatus.RetryExcErr or IbvWcStatus.RnrRetryExcErr or IbvWcStatus.RespTimeoutErr or IbvWcStatus.FatalErr => ReadStatus.PeerGone,
        IbvWcStatus.RemAccessErr => ReadStatus.AccessDenied,
        _ => ReadStatus.Failed,
    };

    private void CheckDeadlines(long now)
    {
        lock (_gate)
        {
            foreach (var op in _all)
            {
                if (!op.Active || op.Status != ReadStatus.Ok || now <= op.Deadline)
                    continue;
                op.Status = ReadStatus.TimedOut;
                BreakLocked(ReadStatus.PeerGone, $"an RDMA READ of {op.Length} bytes did not complete in time, so the queue pair was moved to the error state");
            }
            // A cancelled read with nothing posted completes here.
            if (!_broken)
                PostLocked();
        }
    }

    /// <summary>Completes every read that is still pending; used only when completions can no longer arrive.</summary>
    private void ForceFinishAll(ReadStatus status)
    {
        lock (_gate)
        {
            _unposted.Clear();
            foreach (var op in _all)
            {
                if (!op.Active)
                    continue;
                if (op.Status == ReadStatus.Ok)
                    op.Status = status;
                op.Outstanding = 0;
                FinishLocked(op);
            }
        }
    }

    /// <summary>Completes the reads that ended, outside the lock: here (inline continuations) or on the thread pool.</summary>
    private void DeliverFinished()
    {
        List<RdmaReadOperation> batch;
        lock (_gate)
        {
            if (_finished.Count == 0)
                return;
            batch = _finished;
            _finished = _delivering;
            _delivering = batch;
        }
        foreach (var op in batch)
        {
            if (_inlineContinuations)
                op.Complete();
            else
                ThreadPool.UnsafeQueueUserWorkItem(op, preferLocal: false);
        }
        batch.Clear();
    }

    /// <summary>Fails pending reads, waits for the QP to flush (up to 2 s), stops the poller. The caller then destroys the QP and CQ.</summary>
    public void Dispose()
    {
        if (IsPollingThread)
            throw new InvalidOperationException("The RDMA read queue cannot be disposed from its own polling thread (an inline continuation); leave it first, e.g. with await Task.Yield().");
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            BreakLocked(ReadStatus.PeerGone, "the client was disposed");
        }
        _stopping = true;
        _wake.Set();
        _poller.Join();
        ForceFinishAll(ReadStatus.PeerGone);
        DeliverFinished();
        NativeMemory.Free(_wrs);
        NativeMemory.Free(_sges);
        _wake.Dispose();
    }
}
