using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Fabric.Common.Native;
using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Tests.Rdma;

/// <summary>
/// Proves every struct size, field offset and constant the verbs binding relies on by compiling a C program against
/// the installed rdma-core headers and comparing what it prints with the C# layout.
/// </summary>
public sealed class VerbsLayoutTests
{
    private static long Size<T>() where T : unmanaged => Unsafe.SizeOf<T>();
    private static long Offset<T>(string field) => Marshal.OffsetOf<T>(field).ToInt64();

    private static readonly (string C, long CSharp)[] Layout =
    [
        ("sizeof(struct ibv_context_ops)", Size<IbvContextOps>()),
        ("offsetof(struct ibv_context_ops, poll_cq)", Offset<IbvContextOps>(nameof(IbvContextOps.PollCq))),
        ("offsetof(struct ibv_context_ops, req_notify_cq)", Offset<IbvContextOps>(nameof(IbvContextOps.ReqNotifyCq))),
        ("offsetof(struct ibv_context_ops, post_send)", Offset<IbvContextOps>(nameof(IbvContextOps.PostSend))),
        ("offsetof(struct ibv_context_ops, post_recv)", Offset<IbvContextOps>(nameof(IbvContextOps.PostRecv))),
        ("sizeof(struct ibv_context)", Size<IbvContext>()),
        ("offsetof(struct ibv_context, device)", Offset<IbvContext>(nameof(IbvContext.Device))),
        ("offsetof(struct ibv_context, ops)", Offset<IbvContext>(nameof(IbvContext.Ops))),
        ("offsetof(struct ibv_context, cmd_fd)", Offset<IbvContext>(nameof(IbvContext.CmdFd))),
        ("offsetof(struct ibv_context, async_fd)", Offset<IbvContext>(nameof(IbvContext.AsyncFd))),
        ("offsetof(struct ibv_context, num_comp_vectors)", Offset<IbvContext>(nameof(IbvContext.NumCompVectors))),
        ("offsetof(struct ibv_context, abi_compat)", Offset<IbvContext>(nameof(IbvContext.AbiCompat))),
        ("sizeof(struct verbs_context)", Size<VerbsContext>()),
        ("offsetof(struct verbs_context, query_port)", Offset<VerbsContext>(nameof(VerbsContext.QueryPort))),
        ("offsetof(struct verbs_context, sz)", Offset<VerbsContext>(nameof(VerbsContext.Size))),
        ("offsetof(struct verbs_context, context)", Offset<VerbsContext>(nameof(VerbsContext.Context))),
        ("(long long)(intptr_t)__VERBS_ABI_IS_EXTENDED", VerbsContext.AbiIsExtended),
        ("sizeof(struct ibv_port_attr)", Size<IbvPortAttr>()),
        ("offsetof(struct ibv_port_attr, state)", Offset<IbvPortAttr>(nameof(IbvPortAttr.State))),
        ("offsetof(struct ibv_port_attr, max_msg_sz)", Offset<IbvPortAttr>(nameof(IbvPortAttr.MaxMsgSz))),
        ("offsetof(struct ibv_port_attr, lid)", Offset<IbvPortAttr>(nameof(IbvPortAttr.Lid))),
        ("offsetof(struct ibv_port_attr, link_layer)", Offset<IbvPortAttr>(nameof(IbvPortAttr.LinkLayer))),
        ("offsetof(struct ibv_port_attr, port_cap_flags2)", Offset<IbvPortAttr>(nameof(IbvPortAttr.PortCapFlags2))),
        ("sizeof(struct ibv_pd)", Size<IbvPd>()),
        ("offsetof(struct ibv_pd, context)", Offset<IbvPd>(nameof(IbvPd.Context))),
        ("offsetof(struct ibv_pd, handle)", Offset<IbvPd>(nameof(IbvPd.Handle))),
        ("sizeof(struct ibv_mr)", Size<IbvMr>()),
        ("offsetof(struct ibv_mr, addr)", Offset<IbvMr>(nameof(IbvMr.Addr))),
        ("offsetof(struct ibv_mr, length)", Offset<IbvMr>(nameof(IbvMr.Length))),
        ("offsetof(struct ibv_mr, lkey)", Offset<IbvMr>(nameof(IbvMr.Lkey))),
        ("offsetof(struct ibv_mr, rkey)", Offset<IbvMr>(nameof(IbvMr.Rkey))),
        ("sizeof(struct ibv_cq)", Size<IbvCq>()),
        ("offsetof(struct ibv_cq, context)", Offset<IbvCq>(nameof(IbvCq.Context))),
        ("offsetof(struct ibv_cq, channel)", Offset<IbvCq>(nameof(IbvCq.Channel))),
        ("offsetof(struct ibv_cq, cqe)", Offset<IbvCq>(nameof(IbvCq.Cqe))),
        ("sizeof(struct ibv_qp)", Size<IbvQp>()),
        ("offsetof(struct ibv_qp, context)", Offset<IbvQp>(nameof(IbvQp.Context))),
        ("offsetof(struct ibv_qp, pd)", Offset<IbvQp>(nameof(IbvQp.Pd))),
        ("offsetof(struct ibv_qp, send_cq)", Offset<IbvQp>(nameof(IbvQp.SendCq))),
        ("offsetof(struct ibv_qp, qp_num)", Offset<IbvQp>(nameof(IbvQp.QpNum))),
        ("offsetof(struct ibv_qp, state)", Offset<IbvQp>(nameof(IbvQp.State))),
        ("sizeof(struct ibv_qp_cap)", Size<IbvQpCap>()),
        ("offsetof(struct ibv_qp_cap, max_inline_data)", Offset<IbvQpCap>(nameof(IbvQpCap.MaxInlineData))),
        ("sizeof(struct ibv_qp_init_attr)", Size<IbvQpInitAttr>()),
        ("offsetof(struct ibv_qp_init_attr, send_cq)", Offset<IbvQpInitAttr>(nameof(IbvQpInitAttr.SendCq))),
        ("offsetof(struct ibv_qp_init_attr, recv_cq)", Offset<IbvQpInitAttr>(nameof(IbvQpInitAttr.RecvCq))),
        ("offsetof(struct ibv_qp_init_attr, srq)", Offset<IbvQpInitAttr>(nameof(IbvQpInitAttr.Srq))),
        ("offsetof(struct ibv_qp_init_attr, cap)", Offset<IbvQpInitAttr>(nameof(IbvQpInitAttr.Cap))),
        ("offsetof(struct ibv_qp_init_attr, qp_type)", Offset<IbvQpInitAttr>(nameof(IbvQpInitAttr.QpType))),
        ("offsetof(struct ibv_qp_init_attr, sq_sig_all)", Offset<IbvQpInitAttr>(nameof(IbvQpInitAttr.SqSigAll))),
        ("sizeof(struct ibv_qp_attr)", Size<IbvQpAttr>()),
        ("offsetof(struct ibv_qp_attr, qp_state)", Offset<IbvQpAttr>(nameof(IbvQpAttr.QpState))),
        ("offsetof(struct ibv_qp_attr, cur_qp_state)", Offset<IbvQpAttr>(nameof(IbvQpAttr.CurQpState))),
        ("offsetof(struct ibv_qp_attr, max_rd_atomic)", Offset<IbvQpAttr>(nameof(IbvQpAttr.MaxRdAtomic))),
        ("offsetof(struct ibv_qp_attr, max_dest_rd_atomic)", Offset<IbvQpAttr>(nameof(IbvQpAttr.MaxDestRdAtomic))),
        ("offsetof(struct ibv_qp_attr, timeout)", Offset<IbvQpAttr>(nameof(IbvQpAttr.Timeout))),
        ("offsetof(struct ibv_qp_attr, retry_cnt)", Offset<IbvQpAttr>(nameof(IbvQpAttr.RetryCnt))),
        ("sizeof(struct ibv_sge)", Size<IbvSge>()),
        ("offsetof(struct ibv_sge, addr)", Offset<IbvSge>(nameof(IbvSge.Addr))),
        ("offsetof(struct ibv_sge, length)", Offset<IbvSge>(nameof(IbvSge.Length))),
        ("offsetof(struct ibv_sge, lkey)", Offset<IbvSge>(nameof(IbvSge.Lkey))),
        ("sizeof(struct ibv_send_wr)", Size<IbvSendWr>()),
        ("offsetof(struct ibv_send_wr, wr_id)", Offset<IbvSendWr>(nameof(IbvSendWr.WrId))),
        ("offsetof(struct ibv_send_wr, next)", Offset<IbvSendWr>(nameof(IbvSendWr.Next))),
        ("offsetof(struct ibv_send_wr, sg_list)", Offset<IbvSendWr>(nameof(IbvSendWr.SgList))),
        ("offsetof(struct ibv_send_wr, num_sge)", Offset<IbvSendWr>(nameof(IbvSendWr.NumSge))),
        ("offsetof(struct ibv_send_wr, opcode)", Offset<IbvSendWr>(nameof(IbvSendWr.Opcode))),
        ("offsetof(struct ibv_send_wr, send_flags)", Offset<IbvSendWr>(nameof(IbvSendWr.SendFlags))),
        ("offsetof(struct ibv_send_wr, imm_data)", Offset<IbvSendWr>(nameof(IbvSendWr.ImmData))),
        ("offsetof(struct ibv_send_wr, wr.rdma.remote_addr)", Offset<IbvSendWr>(nameof(IbvSendWr.RdmaRemoteAddr))),
        ("offsetof(struct ibv_send_wr, wr.rdma.rkey)", Offset<IbvSendWr>(nameof(IbvSendWr.RdmaRkey))),
        ("sizeof(struct ibv_recv_wr)", Size<IbvRecvWr>()),
        ("offsetof(struct ibv_recv_wr, next)", Offset<IbvRecvWr>(nameof(IbvRecvWr.Next))),
        ("offsetof(struct ibv_recv_wr, sg_list)", Offset<IbvRecvWr>(nameof(IbvRecvWr.SgList))),
        ("offsetof(struct ibv_recv_wr, num_sge)", Offset<IbvRecvWr>(nameof(IbvRecvWr.NumSge))),
        ("sizeof(struct ibv_wc)", Size<IbvWc>()),
        ("offsetof(struct ibv_wc, status)", Offset<IbvWc>(nameof(IbvWc.Status))),
        ("offsetof(struct ibv_wc, opcode)", Offset<IbvWc>(nameof(IbvWc.Opcode))),
        ("offsetof(struct ibv_wc, vendor_err)", Offset<IbvWc>(nameof(IbvWc.VendorErr))),
        ("offsetof(struct ibv_wc, byte_len)", Offset<IbvWc>(nameof(IbvWc.ByteLen))),
        ("offsetof(struct ibv_wc, qp_num)", Offset<IbvWc>(nameof(IbvWc.QpNum))),
        ("offsetof(struct ibv_wc, wc_flags)", Offset<IbvWc>(nameof(IbvWc.WcFlags))),
        ("offsetof(struct ibv_wc, dlid_path_bits)", Offset<IbvWc>(nameof(IbvWc.DlidPathBits))),
        ("sizeof(struct rdma_event_channel)", Size<RdmaEventChannel>()),
        ("offsetof(struct rdma_event_channel, fd)", Offset<RdmaEventChannel>(nameof(RdmaEventChannel.Fd))),
        ("sizeof(struct rdma_cm_id)", Size<RdmaCmId>()),
        ("offsetof(struct rdma_cm_id, verbs)", Offset<RdmaCmId>(nameof(RdmaCmId.Verbs))),
        ("offsetof(struct rdma_cm_id, channel)", Offset<RdmaCmId>(nameof(RdmaCmId.Channel))),
        ("offsetof(struct rdma_cm_id, context)", Offset<RdmaCmId>(nameof(RdmaCmId.Context))),
        ("offsetof(struct rdma_cm_id, qp)", Offset<RdmaCmId>(nameof(RdmaCmId.Qp))),
        ("offsetof(struct rdma_cm_id, ps)", Offset<RdmaCmId>(nameof(RdmaCmId.Ps))),
        ("offsetof(struct rdma_cm_id, port_num)", Offset<RdmaCmId>(nameof(RdmaCmId.PortNum))),
        ("offsetof(struct rdma_cm_id, send_cq)", Offset<RdmaCmId>(nameof(RdmaCmId.SendCq))),
        ("offsetof(struct rdma_cm_id, recv_cq)", Offset<RdmaCmId>(nameof(RdmaCmId.RecvCq))),
        ("offsetof(struct rdma_cm_id, pd)", Offset<RdmaCmId>(nameof(RdmaCmId.Pd))),
        ("sizeof(struct rdma_conn_param)", Size<RdmaConnParam>()),
        ("offsetof(struct rdma_conn_param, private_data)", Offset<RdmaConnParam>(nameof(RdmaConnParam.PrivateData))),
        ("offsetof(struct rdma_conn_param, private_data_len)", Offset<RdmaConnParam>(nameof(RdmaConnParam.PrivateDataLen))),
        ("offsetof(struct rdma_conn_param, responder_resources)", Offset<RdmaConnParam>(nameof(RdmaConnParam.ResponderResources))),
        ("offsetof(struct rdma_conn_param, initiator_depth)", Offset<RdmaConnParam>(nameof(RdmaConnParam.InitiatorDepth))),
        ("offsetof(struct rdma_conn_param, flow_control)", Offset<RdmaConnParam>(nameof(RdmaConnParam.FlowControl))),
        ("offsetof(struct rdma_conn_param, retry_count)", Offset<RdmaConnParam>(nameof(RdmaConnParam.RetryCount))),
        ("offsetof(struct rdma_conn_param, rnr_retry_count)", Offset<RdmaConnParam>(nameof(RdmaConnParam.RnrRetryCount))),
        ("offsetof(struct rdma_conn_param, srq)", Offset<RdmaConnParam>(nameof(RdmaConnParam.Srq))),
        ("offsetof(struct rdma_conn_param, qp_num)", Offset<RdmaConnParam>(nameof(RdmaConnParam.QpNum))),
        ("sizeof(struct rdma_cm_event)", Size<RdmaCmEvent>()),
        ("offsetof(struct rdma_cm_event, id)", Offset<RdmaCmEvent>(nameof(RdmaCmEvent.Id))),
        ("offsetof(struct rdma_cm_event, listen_id)", Offset<RdmaCmEvent>(nameof(RdmaCmEvent.ListenId))),
        ("offsetof(struct rdma_cm_event, event)", Offset<RdmaCmEvent>(nameof(RdmaCmEvent.Event))),
        ("offsetof(struct rdma_cm_event, status)", Offset<RdmaCmEvent>(nameof(RdmaCmEvent.Status))),
        ("offsetof(struct rdma_cm_event, param.conn)", Offset<RdmaCmEvent>(nameof(RdmaCmEvent.Conn))),
        ("sizeof(struct sockaddr_in6)", Size<SockAddrIn6>()),
        ("offsetof(struct sockaddr_in6, sin6_family)", Offset<SockAddrIn6>(nameof(SockAddrIn6.Family))),
        ("offsetof(struct sockaddr_in6, sin6_port)", Offset<SockAddrIn6>(nameof(SockAddrIn6.Port))),
        ("offsetof(struct sockaddr_in6, sin6_flowinfo)", Offset<SockAddrIn6>(nameof(SockAddrIn6.FlowInfo))),
        ("offsetof(struct sockaddr_in6, sin6_addr)", Offset<SockAddrIn6>(nameof(SockAddrIn6.Addr6))),
        ("offsetof(struct sockaddr_in6, sin6_scope_id)", Offset<SockAddrIn6>(nameof(SockAddrIn6.ScopeId))),
        ("offsetof(struct sockaddr_in, sin_port)", Offset<SockAddrIn6>(nameof(SockAddrIn6.Port))),
        ("offsetof(struct sockaddr_in, sin_addr)", Offset<SockAddrIn6>(nameof(SockAddrIn6.Addr4))),
        ("sizeof(struct pollfd)", Size<LibC.PollFd>()),
        ("offsetof(struct pollfd, revents)", Offset<LibC.PollFd>(nameof(LibC.PollFd.Revents))),
    ];

    private static readonly (string C, long CSharp)[] Constants =
    [
        ("IBV_WR_RDMA_WRITE", (long)IbvWrOpcode.RdmaWrite),
        ("IBV_WR_SEND", (long)IbvWrOpcode.Send),
        ("IBV_WR_RDMA_READ", (long)IbvWrOpcode.RdmaRead),
        ("IBV_SEND_FENCE", (long)IbvSendFlags.Fence),
        ("IBV_SEND_SIGNALED", (long)IbvSendFlags.Signaled),
        ("IBV_ACCESS_LOCAL_WRITE", (long)IbvAccessFlags.LocalWrite),
        ("IBV_ACCESS_REMOTE_WRITE", (long)IbvAccessFlags.RemoteWrite),
        ("IBV_ACCESS_REMOTE_READ", (long)IbvAccessFlags.RemoteRead),
        ("IBV_QPS_RESET", (long)IbvQpState.Reset),
        ("IBV_QPS_INIT", (long)IbvQpState.Init),
        ("IBV_QPS_RTR", (long)IbvQpState.Rtr),
        ("IBV_QPS_RTS", (long)IbvQpState.Rts),
        ("IBV_QPS_ERR", (long)IbvQpState.Err),
        ("IBV_QP_STATE", (long)IbvQpAttrMask.State),
        ("IBV_QPT_RC", (long)IbvQpType.Rc),
        ("IBV_PORT_DOWN", (long)IbvPortState.Down),
        ("IBV_PORT_ACTIVE", (long)IbvPortState.Active),
        ("IBV_WC_SUCCESS", (long)IbvWcStatus.Success),
        ("IBV_WC_LOC_LEN_ERR", (long)IbvWcStatus.LocLenErr),
        ("IBV_WC_LOC_QP_OP_ERR", (long)IbvWcStatus.LocQpOpErr),
        ("IBV_WC_LOC_PROT_ERR", (long)IbvWcStatus.LocProtErr),
        ("IBV_WC_WR_FLUSH_ERR", (long)IbvWcStatus.WrFlushErr),
        ("IBV_WC_LOC_ACCESS_ERR", (long)IbvWcStatus.LocAccessErr),
        ("IBV_WC_REM_INV_REQ_ERR", (long)IbvWcStatus.RemInvReqErr),
        ("IBV_WC_REM_ACCESS_ERR", (long)IbvWcStatus.RemAccessErr),
        ("IBV_WC_REM_OP_ERR", (long)IbvWcStatus.RemOpErr),
        ("IBV_WC_RETRY_EXC_ERR", (long)IbvWcStatus.RetryExcErr),
        ("IBV_WC_RNR_RETRY_EXC_ERR", (long)IbvWcStatus.RnrRetryExcErr),
        ("IBV_WC_FATAL_ERR", (long)IbvWcStatus.FatalErr),
        ("IBV_WC_RESP_TIMEOUT_ERR", (long)IbvWcStatus.RespTimeoutErr),
        ("IBV_WC_GENERAL_ERR", (long)IbvWcStatus.GeneralErr),
        ("IBV_WC_RDMA_READ", (long)IbvWcOpcode.RdmaRead),
        ("IBV_LINK_LAYER_INFINIBAND", 1),
        ("IBV_LINK_LAYER_ETHERNET", 2),
        ("RDMA_PS_TCP", (long)RdmaPortSpace.Tcp),
        ("RDMA_MAX_RESP_RES", CmLimits.DeviceMaximum),
        ("RDMA_MAX_INIT_DEPTH", CmLimits.DeviceMaximum),
        ("RDMA_CM_EVENT_ADDR_RESOLVED", (long)RdmaCmEventType.AddrResolved),
        ("RDMA_CM_EVENT_ADDR_ERROR", (long)RdmaCmEventType.AddrError),
        ("RDMA_CM_EVENT_ROUTE_RESOLVED", (long)RdmaCmEventType.RouteResolved),
        ("RDMA_CM_EVENT_ROUTE_ERROR", (long)RdmaCmEventType.RouteError),
        ("RDMA_CM_EVENT_CONNECT_REQUEST", (long)RdmaCmEventType.ConnectRequest),
        ("RDMA_CM_EVENT_CONNECT_RESPONSE", (long)RdmaCmEventType.ConnectResponse),
        ("RDMA_CM_EVENT_CONNECT_ERROR", (long)RdmaCmEventType.ConnectError),
        ("RDMA_CM_EVENT_UNREACHABLE", (long)RdmaCmEventType.Unreachable),
        ("RDMA_CM_EVENT_REJECTED", (long)RdmaCmEventType.Rejected),
        ("RDMA_CM_EVENT_ESTABLISHED", (long)RdmaCmEventType.Established),
        ("RDMA_CM_EVENT_DISCONNECTED", (long)RdmaCmEventType.Disconnected),
        ("RDMA_CM_EVENT_DEVICE_REMOVAL", (long)RdmaCmEventType.DeviceRemoval),
        ("RDMA_CM_EVENT_ADDR_CHANGE", (long)RdmaCmEventType.AddrChange),
        ("RDMA_CM_EVENT_TIMEWAIT_EXIT", (long)RdmaCmEventType.TimewaitExit),
        ("AF_INET", SocketConstants.AfInet),
        ("AF_INET6", SocketConstants.AfInet6),
        ("POLLIN", LibC.PollIn),
    ];

    [Fact]
    public void StructLayouts_MatchInstalledHeaders() => AssertAllMatch(Layout);

    [Fact]
    public void Constants_MatchInstalledHeaders() => AssertAllMatch(Constants);

    [Fact]
    public void WorkCompletionStatus_IsNamedWithVerbsText()
    {
        var text = Fabric.Transport.Rdma.Verbs.Describe(IbvWcStatus.RetryExcErr);
        Assert.Equal("IBV_WC_RETRY_EXC_ERR (transport retry counter exceeded)", text);
    }

    private static void AssertAllMatch((string C, long CSharp)[] checks)
    {
        var printed = CompileAndRun(checks.Select(c => c.C).ToArray());
        var wrong = checks.Zip(printed)
            .Where(pair => pair.First.CSharp != pair.Second)
            .Select(pair => $"{pair.First.C}: C says {pair.Second}, C# says {pair.First.CSharp}")
            .ToList();
        Assert.True(wrong.Count == 0, "The C# layout differs from the installed headers:\n" + string.Join("\n", wrong));
    }

    /// <summary>Prints each C expression as a number, one a line, with the system compiler and headers.</summary>
    private static long[] CompileAndRun(string[] expressions)
    {
        const string Install = "install them with: apt-get install gcc libc6-dev libibverbs-dev librdmacm-dev (./fabric test does this)";
        Assert.True(File.Exists("/usr/include/infiniband/verbs.h") && File.Exists("/usr/include/rdma/rdma_cma.h"),
            $"The rdma-core headers (/usr/include/infiniband/verbs.h, /usr/include/rdma/rdma_cma.h) are missing; {Install}.");

        var directory = Directory.CreateTempSubdirectory("fabric-verbs-layout-");
        try
        {
            var source = new StringBuilder();
            source.AppendLine("#include <infiniband/verbs.h>\n#include <rdma/rdma_cma.h>\n#include <netinet/in.h>\n#include <poll.h>");
            source.AppendLine("#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\nint main(void) {");
            foreach (var expression in expressions)
                source.AppendLine($"    printf(\"%lld\\n\", (long long)({expression}));");
            source.AppendLine("    return 0;\n}");
            var c = Path.Combine(directory.FullName, "layout.c");
            var program = Path.Combine(directory.FullName, "layout");
            File.WriteAllText(c, source.ToString());

            string compileOutput;
            try
            {
                compileOutput = Run("cc", ["-o", program, c], out var compileCode);
                Assert.True(compileCode == 0, $"Compiling the layout program against the rdma-core headers failed:\n{compileOutput}");
            }
            catch (System.ComponentModel.Win32Exception)
            {
                Assert.Fail($"There is no C compiler (cc) to check the verbs struct layouts; {Install}.");
            }

            var output = Run(program, [], out var runCode);
            Assert.True(runCode == 0, $"The layout program failed: {output}");
            var numbers = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
            Assert.Equal(expressions.Length, numbers.Length);
            return numbers;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static string Run(string file, string[] arguments, out int exitCode)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        exitCode = process.ExitCode;
        return stdout + stderr.Result;
    }
}
