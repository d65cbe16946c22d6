using System.Runtime.InteropServices;

namespace Fabric.Transport.Rdma.Native;

/// <summary>struct rdma_event_channel.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct RdmaEventChannel
{
    public int Fd;
}

/// <summary>struct rdma_cm_id: the fields Fabric reads.</summary>
[StructLayout(LayoutKind.Explicit, Size = 416)]
internal unsafe struct RdmaCmId
{
    [FieldOffset(0)] public IbvContext* Verbs;
    [FieldOffset(8)] public RdmaEventChannel* Channel;
    [FieldOffset(16)] public void* Context;
    [FieldOffset(24)] public IbvQp* Qp;
    [FieldOffset(344)] public RdmaPortSpace Ps;
    [FieldOffset(348)] public byte PortNum;
    [FieldOffset(368)] public IbvCq* SendCq;
    [FieldOffset(384)] public IbvCq* RecvCq;
    [FieldOffset(400)] public IbvPd* Pd;
}

/// <summary>struct rdma_conn_param.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct RdmaConnParam
{
    public void* PrivateData;
    public byte PrivateDataLen;
    public byte ResponderResources;
    public byte InitiatorDepth;
    public byte FlowControl;
    public byte RetryCount;
    public byte RnrRetryCount;
    public byte Srq;
    public uint QpNum;
}

/// <summary>struct rdma_cm_event, with the <c>param.conn</c> member of its union.</summary>
[StructLayout(LayoutKind.Explicit, Size = 80)]
internal unsafe struct RdmaCmEvent
{
    [FieldOffset(0)] public RdmaCmId* Id;
    [FieldOffset(8)] public RdmaCmId* ListenId;
    [FieldOffset(16)] public RdmaCmEventType Event;
    [FieldOffset(20)] public int Status;
    [FieldOffset(24)] public RdmaConnParam Conn;
}

/// <summary>struct sockaddr_in6 (28 bytes); struct sockaddr_in (16 bytes) is its prefix up to the address.</summary>
[StructLayout(LayoutKind.Explicit, Size = 28)]
internal unsafe struct SockAddrIn6
{
    [FieldOffset(0)] public ushort Family;
    /// <summary>Network byte order.</summary>
    [FieldOffset(2)] public ushort Port;
    /// <summary>sockaddr_in.sin_addr, for AF_INET.</summary>
    [FieldOffset(4)] public uint Addr4;
    [FieldOffset(4)] public uint FlowInfo;
    [FieldOffset(8)] public fixed byte Addr6[16];
    [FieldOffset(24)] public uint ScopeId;
}
