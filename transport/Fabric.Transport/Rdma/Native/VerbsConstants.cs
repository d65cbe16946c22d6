namespace Fabric.Transport.Rdma.Native;

// Values from <infiniband/verbs.h> and <rdma/rdma_cma.h>; VerbsLayoutTests compares each with the installed headers.

internal enum IbvWrOpcode
{
    RdmaWrite = 0,
    Send = 2,
    RdmaRead = 4,
}

[Flags]
internal enum IbvSendFlags : uint
{
    Fence = 1,
    Signaled = 2,
}

[Flags]
internal enum IbvAccessFlags
{
    LocalWrite = 1,
    RemoteWrite = 2,
    RemoteRead = 4,
}

internal enum IbvQpState
{
    Reset = 0,
    Init = 1,
    Rtr = 2,
    Rts = 3,
    Err = 6,
}

[Flags]
internal enum IbvQpAttrMask
{
    State = 1,
}

internal enum IbvQpType
{
    Rc = 2,
}

internal enum IbvPortState
{
    Down = 1,
    Active = 4,
}

internal enum IbvWcStatus
{
    Success = 0,
    LocLenErr = 1,
    LocQpOpErr = 2,
    LocProtErr = 4,
    WrFlushErr = 5,
    LocAccessErr = 8,
    RemInvReqErr = 9,
    RemAccessErr = 10,
    RemOpErr = 11,
    RetryExcErr = 12,
    RnrRetryExcErr = 13,
    FatalErr = 19,
    RespTimeoutErr = 20,
    GeneralErr = 21,
}

internal enum IbvWcOpcode
{
    RdmaRead = 2,
}

internal enum RdmaCmEventType
{
    AddrResolved = 0,
    AddrError = 1,
    RouteResolved = 2,
    RouteError = 3,
    ConnectRequest = 4,
    ConnectResponse = 5,
    ConnectError = 6,
    Unreachable = 7,
    Rejected = 8,
    Established = 9,
    Disconnected = 10,
    DeviceRemoval = 11,
    AddrChange = 14,
    TimewaitExit = 15,
}

internal enum RdmaPortSpace
{
    Tcp = 0x0106,
}

internal static class SocketConstants
{
    public const ushort AfInet = 2;
    public const ushort AfInet6 = 10;
}

internal static class CmLimits
{
    /// <summary>RDMA_MAX_RESP_RES / RDMA_MAX_INIT_DEPTH: "as many as the device allows".</summary>
    public const byte DeviceMaximum = 0xFF;
}
