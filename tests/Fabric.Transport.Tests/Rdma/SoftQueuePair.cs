using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Tests.Rdma;

/// <summary>
/// A software provider behind an <c>ibv_context.ops</c> table: post_send performs each RDMA READ as a memcpy and
/// queues its completion, poll_cq hands completions out. Machines without an RDMA device are the common case, so this
/// is what lets the read queue's own logic (slicing, send-queue credits, completion mapping, errors, flushes,
/// time-outs, cancellation) run here; the real device path is covered by the rdma:// conformance suite on hardware.
/// </summary>
internal sealed unsafe class SoftQueuePair : IDisposable
{
    private static readonly ConcurrentDictionary<nint, SoftQueuePair> ByQp = new();
    private static readonly ConcurrentDictionary<nint, SoftQueuePair> ByCq = new();

    private readonly Lock _gate = new();
    private readonly Queue<IbvWc> _ready = new();
    private readonly List<IbvWc> _held = [];
    private int _posted;
    private int _outstanding;

    public SoftQueuePair()
    {
        Context = (IbvContext*)NativeMemory.AllocZeroed((nuint)sizeof(IbvContext));
        Qp = (IbvQp*)NativeMemory.AllocZeroed((nuint)sizeof(IbvQp));
        Cq = (IbvCq*)NativeMemory.AllocZeroed((nuint)sizeof(IbvCq));
        Context->Ops.PostSend = &PostSend;
        Context->Ops.PollCq = &PollCq;
        Qp->Context = Context;
        Cq->Context = Context;
        ByQp[(nint)Qp] = this;
        ByCq[(nint)Cq] = this;
    }

    public IbvContext* Context { get; }
    public IbvQp* Qp { get; }
    public IbvCq* Cq { get; }

    /// <summary>Withhold completions until <see cref="Release"/> (or a flush), as a slow or dead peer would.</summary>
    public bool Hold { get; set; }

    /// <summary>The 1-based number of the work request that completes with <see cref="FailStatus"/>; 0 for none.</summary>
    public int FailAt { get; set; }
    public IbvWcStatus FailStatus { get; set; } = IbvWcStatus.RetryExcErr;

    /// <summary>An errno post_send returns at work request <see cref="PostErrorAt"/> of a chain (0-based); 0 for none.</summary>
    public int PostError { get; set; }
    public int PostErrorAt { get; set; }

    public bool InError { get; private set; }
    public int MaxOutstanding { get; private set; }
    public List<uint> Lengths { get; } = [];
    public List<string> Problems { get; } = [];

    public static delegate*<IbvQp*, int> MoveToErrorFunction => &MoveToError;

    /// <summary>Lets withheld completions through.</summary>
    public void Release()
    {
        lock (_gate)
        {
            foreach (var wc in _held)
                _ready.Enqueue(wc);
            _held.Clear();
        }
    }

    [UnmanagedCallersOnly]
    private static int PostSend(IbvQp* qp, IbvSendWr* wr, IbvSendWr** bad) => ByQp[(nint)qp].Post(wr, bad);

    [UnmanagedCallersOnly]
    private static int PollCq(IbvCq* cq, int count, IbvWc* wc) => ByCq[(nint)cq].Poll(count, wc);

    private static int MoveToError(IbvQp* qp)
    {
        ByQp[(nint)qp].EnterError();
        return 0;
    }

    private int Post(IbvSendWr* wr, IbvSendWr** bad)
    {
        lock (_gate)
        {
            for (var index = 0; wr != null; wr = wr->Next, index++)
            {
                if (PostError != 0 && index == PostErrorAt)
                {
                    *bad = wr;
                    return PostError;
                }
                if (wr->Opcode != IbvWrOpcode.RdmaRead || wr->NumSge != 1 || (wr->SendFlags & IbvSendFlags.Signaled) == 0)
                    Problems.Add($"work request {wr->WrId}: opcode {wr->Opcode}, {wr->NumSge} SGEs, flags {wr->SendFlags}");
                var length = wr->SgList->Length;
                Lengths.Add(length);
                _outstanding++;
                MaxOutstanding = Math.Max(MaxOutstanding, _outstanding);
                _posted++;
                var status = InError ? IbvWcStatus.WrFlushErr : _posted == FailAt ? FailStatus : IbvWcStatus.Success;
                if (status == IbvWcStatus.Success)
                    Buffer.MemoryCopy((void*)wr->RdmaRemoteAddr, (void*)wr->SgList->Addr, length, length);
                else
                    InError = true;
                var completion = new IbvWc { WrId = wr->WrId, Status = status, Opcode = IbvWcOpcode.RdmaRead, ByteLen = length };
                if (Hold && status == IbvWcStatus.Success)
                    _held.Add(completion);
                else
                    _ready.Enqueue(completion);
            }
            return 0;
        }
    }

    private int Poll(int count, IbvWc* wc)
    {
        lock (_gate)
        {
            var taken = 0;
            while (taken < count && _ready.TryDequeue(out var next))
                wc[taken++] = next;
            _outstanding -= taken;
            return taken;
        }
    }

    private void EnterError()
    {
        lock (_gate)
        {
            InError = true;
            foreach (var wc in _held)
                _ready.Enqueue(wc with { Status = IbvWcStatus.WrFlushErr });
            _held.Clear();
        }
    }

    public void Dispose()
    {
        ByQp.TryRemove((nint)Qp, out _);
        ByCq.TryRemove((nint)Cq, out _);
        NativeMemory.Free(Context);
        NativeMemory.Free(Qp);
        NativeMemory.Free(Cq);
    }
}
