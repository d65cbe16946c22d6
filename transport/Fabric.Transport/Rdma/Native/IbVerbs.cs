using System.Runtime.InteropServices;

namespace Fabric.Transport.Rdma.Native;

/// <summary>
/// libibverbs.so.1. Exported functions through <see cref="LibraryImportAttribute"/>; the verbs that verbs.h defines
/// <c>static inline</c> (post_send, post_recv, poll_cq, req_notify_cq, the extended query_port) through the
/// provider's function tables, exactly as the inline C code does.
/// </summary>
internal static unsafe partial class IbVerbs
{
    public const string Library = "libibverbs.so.1";

    [LibraryImport(Library, EntryPoint = "ibv_get_device_list", SetLastError = true)]
    public static partial IbvDevice** GetDeviceList(int* count);

    [LibraryImport(Library, EntryPoint = "ibv_free_device_list")]
    public static partial void FreeDeviceList(IbvDevice** list);

    [LibraryImport(Library, EntryPoint = "ibv_get_device_name")]
    public static partial byte* GetDeviceName(IbvDevice* device);

    [LibraryImport(Library, EntryPoint = "ibv_open_device", SetLastError = true)]
    public static partial IbvContext* OpenDevice(IbvDevice* device);

    [LibraryImport(Library, EntryPoint = "ibv_close_device", SetLastError = true)]
    public static partial int CloseDevice(IbvContext* context);

    [LibraryImport(Library, EntryPoint = "ibv_alloc_pd", SetLastError = true)]
    public static partial IbvPd* AllocPd(IbvContext* context);

    [LibraryImport(Library, EntryPoint = "ibv_dealloc_pd")]
    public static partial int DeallocPd(IbvPd* pd);

    /// <summary>The exported ibv_reg_mr; the header's macro only reroutes optional access flags, which Fabric never uses.</summary>
    [LibraryImport(Library, EntryPoint = "ibv_reg_mr", SetLastError = true)]
    public static partial IbvMr* RegMr(IbvPd* pd, void* addr, nuint length, IbvAccessFlags access);

    [LibraryImport(Library, EntryPoint = "ibv_dereg_mr")]
    public static partial int DeregMr(IbvMr* mr);

    [LibraryImport(Library, EntryPoint = "ibv_create_comp_channel", SetLastError = true)]
    public static partial IbvCompChannel* CreateCompChannel(IbvContext* context);

    [LibraryImport(Library, EntryPoint = "ibv_destroy_comp_channel")]
    public static partial int DestroyCompChannel(IbvCompChannel* channel);

    [LibraryImport(Library, EntryPoint = "ibv_create_cq", SetLastError = true)]
    public static partial IbvCq* CreateCq(IbvContext* context, int cqe, void* cqContext, IbvCompChannel* channel, int compVector);

    [LibraryImport(Library, EntryPoint = "ibv_destroy_cq")]
    public static partial int DestroyCq(IbvCq* cq);

    [LibraryImport(Library, EntryPoint = "ibv_create_qp", SetLastError = true)]
    public static partial IbvQp* CreateQp(IbvPd* pd, IbvQpInitAttr* attr);

    [LibraryImport(Library, EntryPoint = "ibv_destroy_qp")]
    public static partial int DestroyQp(IbvQp* qp);

    /// <summary>Returns 0 or an errno value.</summary>
    [LibraryImport(Library, EntryPoint = "ibv_modify_qp")]
    public static partial int ModifyQp(IbvQp* qp, IbvQpAttr* attr, IbvQpAttrMask mask);

    /// <summary>The exported symbol, which fills only the fields of the old (compat) port attribute struct.</summary>
    [LibraryImport(Library, EntryPoint = "ibv_query_port")]
    private static partial int QueryPortCompat(IbvContext* context, byte port, IbvPortAttr* attr);

    [LibraryImport(Library, EntryPoint = "ibv_wc_status_str")]
    public static partial byte* WcStatusStr(IbvWcStatus status);

    /// <summary>verbs.h's inline ___ibv_query_port: the extended op when the provider has one, else the exported symbol.</summary>
    public static int QueryPort(IbvContext* context, byte port, IbvPortAttr* attr)
    {
        if (context->AbiCompat == VerbsContext.AbiIsExtended)
        {
            var extended = (VerbsContext*)((byte*)context - VerbsContext.ContextOffset);
            if (extended->Size >= (nuint)sizeof(VerbsContext) && extended->QueryPort != null)
                return extended->QueryPort(context, port, attr, (nuint)sizeof(IbvPortAttr));
        }
        *attr = default;
        return QueryPortCompat(context, port, attr);
    }

    /// <summary>ibv_post_send: 0 or an errno value; <paramref name="bad"/> names the first work request not posted.</summary>
    public static int PostSend(IbvQp* qp, IbvSendWr* wr, IbvSendWr** bad) => qp->Context->Ops.PostSend(qp, wr, bad);

    /// <summary>ibv_post_recv: 0 or an errno value.</summary>
    public static int PostRecv(IbvQp* qp, IbvRecvWr* wr, IbvRecvWr** bad) => qp->Context->Ops.PostRecv(qp, wr, bad);

    /// <summary>ibv_poll_cq: the number of completions written to <paramref name="wc"/>, or a negative number on failure.</summary>
    public static int PollCq(IbvCq* cq, int count, IbvWc* wc) => cq->Context->Ops.PollCq(cq, count, wc);

    /// <summary>ibv_req_notify_cq: 0 or an errno value.</summary>
    public static int ReqNotifyCq(IbvCq* cq, bool solicitedOnly) => cq->Context->Ops.ReqNotifyCq(cq, solicitedOnly ? 1 : 0);
}
