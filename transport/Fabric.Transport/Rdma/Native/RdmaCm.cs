using System.Runtime.InteropServices;

namespace Fabric.Transport.Rdma.Native;

/// <summary>librdmacm.so.1: the connection manager. Functions return 0, or -1 with errno set, unless noted.</summary>
internal static unsafe partial class RdmaCm
{
    public const string Library = "librdmacm.so.1";

    [LibraryImport(Library, EntryPoint = "rdma_create_event_channel", SetLastError = true)]
    public static partial RdmaEventChannel* CreateEventChannel();

    [LibraryImport(Library, EntryPoint = "rdma_destroy_event_channel")]
    public static partial void DestroyEventChannel(RdmaEventChannel* channel);

    [LibraryImport(Library, EntryPoint = "rdma_create_id", SetLastError = true)]
    public static partial int CreateId(RdmaEventChannel* channel, RdmaCmId** id, void* context, RdmaPortSpace ps);

    [LibraryImport(Library, EntryPoint = "rdma_destroy_id", SetLastError = true)]
    public static partial int DestroyId(RdmaCmId* id);

    [LibraryImport(Library, EntryPoint = "rdma_bind_addr", SetLastError = true)]
    public static partial int BindAddr(RdmaCmId* id, SockAddrIn6* addr);

    [LibraryImport(Library, EntryPoint = "rdma_resolve_addr", SetLastError = true)]
    public static partial int ResolveAddr(RdmaCmId* id, SockAddrIn6* src, SockAddrIn6* dst, int timeoutMs);

    [LibraryImport(Library, EntryPoint = "rdma_resolve_route", SetLastError = true)]
    public static partial int ResolveRoute(RdmaCmId* id, int timeoutMs);

    [LibraryImport(Library, EntryPoint = "rdma_create_qp", SetLastError = true)]
    public static partial int CreateQp(RdmaCmId* id, IbvPd* pd, IbvQpInitAttr* attr);

    [LibraryImport(Library, EntryPoint = "rdma_destroy_qp")]
    public static partial void DestroyQp(RdmaCmId* id);

    [LibraryImport(Library, EntryPoint = "rdma_connect", SetLastError = true)]
    public static partial int Connect(RdmaCmId* id, RdmaConnParam* param);

    [LibraryImport(Library, EntryPoint = "rdma_listen", SetLastError = true)]
    public static partial int Listen(RdmaCmId* id, int backlog);

    [LibraryImport(Library, EntryPoint = "rdma_accept", SetLastError = true)]
    public static partial int Accept(RdmaCmId* id, RdmaConnParam* param);

    [LibraryImport(Library, EntryPoint = "rdma_reject", SetLastError = true)]
    public static partial int Reject(RdmaCmId* id, void* privateData, byte privateDataLength);

    [LibraryImport(Library, EntryPoint = "rdma_disconnect", SetLastError = true)]
    public static partial int Disconnect(RdmaCmId* id);

    [LibraryImport(Library, EntryPoint = "rdma_get_cm_event", SetLastError = true)]
    public static partial int GetCmEvent(RdmaEventChannel* channel, RdmaCmEvent** @event);

    [LibraryImport(Library, EntryPoint = "rdma_ack_cm_event", SetLastError = true)]
    public static partial int AckCmEvent(RdmaCmEvent* @event);

    /// <summary>The bound port in network byte order.</summary>
    [LibraryImport(Library, EntryPoint = "rdma_get_src_port")]
    public static partial ushort GetSrcPort(RdmaCmId* id);

    [LibraryImport(Library, EntryPoint = "rdma_event_str")]
    public static partial byte* EventStr(RdmaCmEventType type);
}
