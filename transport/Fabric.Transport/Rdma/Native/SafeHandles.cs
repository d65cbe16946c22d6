using System.Runtime.InteropServices;

namespace Fabric.Transport.Rdma.Native;

/// <summary>
/// A native verbs object. It keeps the objects it was created from (a PD for an MR, a CQ for a QP) alive until it is
/// released itself, so that finalizers never destroy them in the wrong order.
/// </summary>
internal abstract unsafe class VerbsHandle : SafeHandle
{
    private SafeHandle[] _parents = [];

    protected VerbsHandle() : base(0, ownsHandle: true) { }

    public override bool IsInvalid => handle == 0;

    /// <summary>Takes ownership of <paramref name="pointer"/> and a reference on each parent.</summary>
    protected void Own(void* pointer, SafeHandle[] parents)
    {
        foreach (var parent in parents)
        {
            var added = false;
            parent.DangerousAddRef(ref added);
        }
        _parents = parents;
        SetHandle((nint)pointer);
    }

    protected sealed override bool ReleaseHandle()
    {
        var ok = Destroy();
        foreach (var parent in _parents)
            parent.DangerousRelease();
        return ok;
    }

    protected abstract bool Destroy();
}

/// <summary>An ibv_context opened with ibv_open_device.</summary>
internal sealed unsafe class SafeDeviceContext : VerbsHandle
{
    public SafeDeviceContext(IbvContext* context) => Own(context, []);
    public IbvContext* Pointer => (IbvContext*)handle;
    protected override bool Destroy() => IbVerbs.CloseDevice(Pointer) == 0;
}

/// <summary>A protection domain; the owner handles given keep the device context alive when Fabric opened it.</summary>
internal sealed unsafe class SafeProtectionDomain : VerbsHandle
{
    public SafeProtectionDomain(IbvPd* pd, params SafeHandle[] owner) => Own(pd, owner);
    public IbvPd* Pointer => (IbvPd*)handle;
    protected override bool Destroy() => IbVerbs.DeallocPd(Pointer) == 0;
}

/// <summary>A registered memory region; its keys stay readable after registration.</summary>
internal sealed unsafe class SafeMemoryRegion : VerbsHandle
{
    public SafeMemoryRegion(IbvMr* mr, SafeProtectionDomain pd)
    {
        Own(mr, [pd]);
        Lkey = mr->Lkey;
        Rkey = mr->Rkey;
        Address = (ulong)mr->Addr;
        Length = (long)mr->Length;
    }

    public uint Lkey { get; }
    public uint Rkey { get; }
    public ulong Address { get; }
    public long Length { get; }
    protected override bool Destroy() => IbVerbs.DeregMr((IbvMr*)handle) == 0;
}

/// <summary>A completion queue.</summary>
internal sealed unsafe class SafeCompletionQueue : VerbsHandle
{
    public SafeCompletionQueue(IbvCq* cq) => Own(cq, []);
    public IbvCq* Pointer => (IbvCq*)handle;
    protected override bool Destroy() => IbVerbs.DestroyCq(Pointer) == 0;
}

/// <summary>A connection-manager event channel.</summary>
internal sealed unsafe class SafeEventChannel : VerbsHandle
{
    public SafeEventChannel(RdmaEventChannel* channel) => Own(channel, []);
    public RdmaEventChannel* Pointer => (RdmaEventChannel*)handle;
    public int Fd => Pointer->Fd;

    protected override bool Destroy()
    {
        RdmaCm.DestroyEventChannel(Pointer);
        return true;
    }
}

/// <summary>
/// A connection-manager id and the QP created on it with rdma_create_qp: releasing destroys the QP, then the id.
/// It keeps its event channel and, once a QP exists, the QP's CQ and PD alive.
/// </summary>
internal sealed unsafe class SafeCmId : VerbsHandle
{
    private readonly List<SafeHandle> _extra = [];

    public SafeCmId(RdmaCmId* id, SafeEventChannel channel) => Own(id, [channel]);

    public RdmaCmId* Pointer => (RdmaCmId*)handle;

    /// <summary>Keeps <paramref name="dependency"/> (the CQ and PD of the QP on this id) alive until this id is released.</summary>
    public void Retain(SafeHandle dependency)
    {
        var added = false;
        dependency.DangerousAddRef(ref added);
        lock (_extra)
            _extra.Add(dependency);
    }

    protected override bool Destroy()
    {
        if (Pointer->Qp != null)
            RdmaCm.DestroyQp(Pointer);
        var ok = RdmaCm.DestroyId(Pointer) == 0;
        lock (_extra)
        {
            foreach (var dependency in _extra)
                dependency.DangerousRelease();
            _extra.Clear();
        }
        return ok;
    }
}
