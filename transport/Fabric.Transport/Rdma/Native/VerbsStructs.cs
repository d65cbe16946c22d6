using System.Runtime.InteropServices;

namespace Fabric.Transport.Rdma.Native;

// C layouts of the rdma-core structs the binding touches (x86-64 / aarch64 LP64). Only the fields Fabric reads or
// writes are declared; explicit offsets and sizes are proven against the installed headers by VerbsLayoutTests.

/// <summary>struct ibv_device: opaque; its name comes from ibv_get_device_name.</summary>
internal struct IbvDevice;

/// <summary>struct ibv_comp_channel: opaque.</summary>
internal struct IbvCompChannel;

/// <summary>struct ibv_srq: opaque.</summary>
internal struct IbvSrq;

/// <summary>struct ibv_context_ops: the provider's function table that the static-inline verbs call through.</summary>
[StructLayout(LayoutKind.Explicit, Size = 256)]
internal unsafe struct IbvContextOps
{
    [FieldOffset(88)] public delegate* unmanaged<IbvCq*, int, IbvWc*, int> PollCq;
    [FieldOffset(96)] public delegate* unmanaged<IbvCq*, int, int> ReqNotifyCq;
    [FieldOffset(200)] public delegate* unmanaged<IbvQp*, IbvSendWr*, IbvSendWr**, int> PostSend;
    [FieldOffset(208)] public delegate* unmanaged<IbvQp*, IbvRecvWr*, IbvRecvWr**, int> PostRecv;
}

/// <summary>struct ibv_context.</summary>
[StructLayout(LayoutKind.Explicit, Size = 328)]
internal unsafe struct IbvContext
{
    [FieldOffset(0)] public IbvDevice* Device;
    [FieldOffset(8)] public IbvContextOps Ops;
    [FieldOffset(264)] public int CmdFd;
    [FieldOffset(268)] public int AsyncFd;
    [FieldOffset(272)] public int NumCompVectors;
    [FieldOffset(320)] public nint AbiCompat;
}

/// <summary>struct verbs_context: lies in memory just before its ibv_context when abi_compat says so.</summary>
[StructLayout(LayoutKind.Explicit, Size = 648)]
internal unsafe struct VerbsContext
{
    /// <summary>__VERBS_ABI_IS_EXTENDED: ((void *)UINTPTR_MAX).</summary>
    public static readonly nint AbiIsExtended = -1;

    public const int ContextOffset = 320;

    [FieldOffset(0)] public delegate* unmanaged<IbvContext*, byte, IbvPortAttr*, nuint, int> QueryPort;
    [FieldOffset(312)] public nuint Size;
    [FieldOffset(ContextOffset)] public IbvContext Context;
}

/// <summary>struct ibv_port_attr.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IbvPortAttr
{
    public IbvPortState State;
    public int MaxMtu;
    public int ActiveMtu;
    public int GidTblLen;
    public uint PortCapFlags;
    public uint MaxMsgSz;
    public uint BadPkeyCntr;
    public uint QkeyViolCntr;
    public ushort PkeyTblLen;
    public ushort Lid;
    public ushort SmLid;
    public byte Lmc;
    public byte MaxVlNum;
    public byte SmSl;
    public byte SubnetTimeout;
    public byte InitTypeReply;
    public byte ActiveWidth;
    public byte ActiveSpeed;
    public byte PhysState;
    public byte LinkLayer;
    public byte Flags;
    public ushort PortCapFlags2;
}

/// <summary>struct ibv_pd.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
internal unsafe struct IbvPd
{
    [FieldOffset(0)] public IbvContext* Context;
    [FieldOffset(8)] public uint Handle;
}

/// <summary>struct ibv_mr.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IbvMr
{
    public IbvContext* Context;
    public IbvPd* Pd;
    public void* Addr;
    public nuint Length;
    public uint Handle;
    public uint Lkey;
    public uint Rkey;
}

/// <summary>struct ibv_cq.</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal unsafe struct IbvCq
{
    [FieldOffset(0)] public IbvContext* Context;
    [FieldOffset(8)] public IbvCompChannel* Channel;
    [FieldOffset(28)] public int Cqe;
}

/// <summary>struct ibv_qp.</summary>
[StructLayout(LayoutKind.Explicit, Size = 160)]
internal unsafe struct IbvQp
{
    [FieldOffset(0)] public IbvContext* Context;
    [FieldOffset(16)] public IbvPd* Pd;
    [FieldOffset(24)] public IbvCq* SendCq;
    [FieldOffset(52)] public uint QpNum;
    [FieldOffset(56)] public IbvQpState State;
}

/// <summary>struct ibv_qp_cap.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IbvQpCap
{
    public uint MaxSendWr;
    public uint MaxRecvWr;
    public uint MaxSendSge;
    public uint MaxRecvSge;
    public uint MaxInlineData;
}

/// <summary>struct ibv_qp_init_attr.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IbvQpInitAttr
{
    public void* QpContext;
    public IbvCq* SendCq;
    public IbvCq* RecvCq;
    public IbvSrq* Srq;
    public IbvQpCap Cap;
    public IbvQpType QpType;
    public int SqSigAll;
}

/// <summary>struct ibv_qp_attr: only the state is set (to move a QP into the error state).</summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
internal struct IbvQpAttr
{
    [FieldOffset(0)] public IbvQpState QpState;
    [FieldOffset(4)] public IbvQpState CurQpState;
    [FieldOffset(126)] public byte MaxRdAtomic;
    [FieldOffset(127)] public byte MaxDestRdAtomic;
    [FieldOffset(130)] public byte Timeout;
    [FieldOffset(131)] public byte RetryCnt;
}

/// <summary>struct ibv_sge.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IbvSge
{
    public ulong Addr;
    public uint Length;
    public uint Lkey;
}

/// <summary>struct ibv_send_wr, with the <c>wr.rdma</c> member of its union.</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal unsafe struct IbvSendWr
{
    [FieldOffset(0)] public ulong WrId;
    [FieldOffset(8)] public IbvSendWr* Next;
    [FieldOffset(16)] public IbvSge* SgList;
    [FieldOffset(24)] public int NumSge;
    [FieldOffset(28)] public IbvWrOpcode Opcode;
    [FieldOffset(32)] public IbvSendFlags SendFlags;
    [FieldOffset(36)] public uint ImmData;
    [FieldOffset(40)] public ulong RdmaRemoteAddr;
    [FieldOffset(48)] public uint RdmaRkey;
}

/// <summary>struct ibv_recv_wr.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IbvRecvWr
{
    public ulong WrId;
    public IbvRecvWr* Next;
    public IbvSge* SgList;
    public int NumSge;
}

/// <summary>struct ibv_wc.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IbvWc
{
    public ulong WrId;
    public IbvWcStatus Status;
    public IbvWcOpcode Opcode;
    public uint VendorErr;
    public uint ByteLen;
    public uint ImmData;
    public uint QpNum;
    public uint SrcQp;
    public uint WcFlags;
    public ushort PkeyIndex;
    public ushort Slid;
    public byte Sl;
    public byte DlidPathBits;
}
