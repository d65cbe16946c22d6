using System.Net;
using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Rdma;

/// <summary>
/// The client's RC queue pair to one server, made with rdma_cm, and everything that hangs off it: protection
/// domain, completion queue, the RDMA READ queue and the registered destination buffers.
/// </summary>
internal sealed class RdmaConnection : IDisposable
{
    /// <summary>Send-queue depths tried in order until the device accepts one.</summary>
    private static readonly int[] Depths = [512, 128, 32];

    private readonly CmEventLoop _loop;
    private readonly SafeCmId _id;
    private readonly SafeProtectionDomain _pd;
    private readonly SafeCompletionQueue _cq;
    private int _disposed;

    private RdmaConnection(CmEventLoop loop, SafeCmId id, SafeProtectionDomain pd, SafeCompletionQueue cq, RdmaReadQueue queue)
    {
        _loop = loop;
        _id = id;
        _pd = pd;
        _cq = cq;
        Queue = queue;
        Destinations = new DestinationRegistry(pd);
    }

    public RdmaReadQueue Queue { get; }

    public DestinationRegistry Destinations { get; }

    /// <summary>
    /// Connects a queue pair to the rdma_cm listener at <paramref name="address"/>:<paramref name="cmPort"/>, presenting
    /// <paramref name="token"/> so the server can bind it to the authenticated control session.
    /// </summary>
    public static async Task<RdmaConnection> ConnectAsync(FabricEndpoint endpoint, IPAddress address, int cmPort, byte[] token, TimeSpan timeout, bool inlineContinuations, CancellationToken cancellationToken)
    {
        var loop = new CmEventLoop($"rdma-cm {endpoint}");
        SafeCmId? id = null;
        SafeProtectionDomain? pd = null;
        SafeCompletionQueue? cq = null;
        try
        {
            id = loop.CreateId();
            var events = new CmEventWaiter();
            loop.Register(id, events.Post);
            var timeoutMs = (int)Math.Clamp(timeout.TotalMilliseconds, 100, int.MaxValue);

            CmSteps.ResolveAddress(id, address, cmPort, timeoutMs);
            await events.ExpectAsync(RdmaCmEventType.AddrResolved, endpoint, "resolving the address", timeout, cancellationToken).ConfigureAwait(false);
            CmSteps.ResolveRoute(id, timeoutMs);
            await events.ExpectAsync(RdmaCmEventType.RouteResolved, endpoint, "resolving the route", timeout, cancellationToken).ConfigureAwait(false);
            var depth = CmSteps.CreateQueuePair(id, Depths, out pd, out cq);
            CmSteps.Connect(id, token);
            await events.ExpectAsync(RdmaCmEventType.Established, endpoint, "connecting the queue pair", timeout, cancellationToken).ConfigureAwait(false);

            var queue = CmSteps.CreateReadQueue(id, cq, depth, inlineContinuations, $"rdma-poll {endpoint}");
            var connection = new RdmaConnection(loop, id, pd, cq, queue);
            loop.Register(id, connection.OnEvent);
            return connection;
        }
        catch
        {
            id?.Dispose();
            cq?.Dispose();
            pd?.Dispose();
            loop.Dispose();
            throw;
        }
    }

    private void OnEvent(CmEvent e)
    {
        if (e.Type is RdmaCmEventType.Disconnected or RdmaCmEventType.DeviceRemoval or RdmaCmEventType.AddrChange)
            Queue.Break(ReadStatus.PeerGone, $"the server ended the RDMA connection ({e})");
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _loop.Unregister(_id);
        Queue.Dispose();
        CmSteps.Disconnect(_id);
        Destinations.Dispose();
        _id.Dispose();
        _cq.Dispose();
        _pd.Dispose();
        _loop.Dispose();
    }
}

/// <summary>The native steps of connecting a client queue pair, kept out of the async method that sequences them.</summary>
internal static unsafe class CmSteps
{
    public static void ResolveAddress(SafeCmId id, IPAddress address, int port, int timeoutMs)
    {
        var destination = SocketAddresses.From(address, port);
        Verbs.Check(RdmaCm.ResolveAddr(id.Pointer, null, &destination, timeoutMs), "rdma_resolve_addr");
    }

    public static void ResolveRoute(SafeCmId id, int timeoutMs) =>
        Verbs.Check(RdmaCm.ResolveRoute(id.Pointer, timeoutMs), "rdma_resolve_route");

    /// <summary>Creates the PD, the CQ and an RC QP on <paramref name="id"/>'s device; returns the send-queue depth the device granted.</summary>
    public static int CreateQueuePair(SafeCmId id, int[] depths, out SafeProtectionDomain pd, out SafeCompletionQueue cq)
    {
        var verbs = id.Pointer->Verbs;
        pd = new SafeProtectionDomain(Verbs.CheckPointer(IbVerbs.AllocPd(verbs), "ibv_alloc_pd"));
        SafeCompletionQueue? created = null;
        try
        {
            foreach (var candidate in depths)
            {
                created?.Dispose();
                created = new SafeCompletionQueue(Verbs.CheckPointer(IbVerbs.CreateCq(verbs, candidate + 1, null, null, 0), "ibv_create_cq"));
                var attr = default(IbvQpInitAttr);
                attr.SendCq = created.Pointer;
                attr.RecvCq = created.Pointer;
                attr.Cap.MaxSendWr = (uint)candidate;
                attr.Cap.MaxRecvWr = 1;
                attr.Cap.MaxSendSge = 1;
                attr.Cap.MaxRecvSge = 1;
                attr.QpType = IbvQpType.Rc;
                if (RdmaCm.CreateQp(id.Pointer, pd.Pointer, &attr) == 0)
                {
                    id.Retain(created);
                    id.Retain(pd);
                    cq = created;
                    return (int)Math.Min(attr.Cap.MaxSendWr, (uint)candidate);
                }
                if (candidate == depths[^1])
                    Verbs.Check(-1, "rdma_create_qp");
            }
            throw new InvalidOperationException("No queue depth was tried.");
        }
        catch
        {
            created?.Dispose();
            pd.Dispose();
            throw;
        }
    }

    public static void Connect(SafeCmId id, byte[] token)
    {
        fixed (byte* data = token)
        {
            var param = default(RdmaConnParam);
            param.PrivateData = data;
            param.PrivateDataLen = (byte)token.Length;
            param.ResponderResources = CmLimits.DeviceMaximum;
            param.InitiatorDepth = CmLimits.DeviceMaximum;
            param.RetryCount = 7;
            param.RnrRetryCount = 7;
            Verbs.Check(RdmaCm.Connect(id.Pointer, &param), "rdma_connect");
        }
    }

    public static RdmaReadQueue CreateReadQueue(SafeCmId id, SafeCompletionQueue cq, int depth, bool inlineContinuations, string name) =>
        new(id.Pointer->Qp, cq.Pointer, depth, inlineContinuations, name);

    public static void Disconnect(SafeCmId id) => RdmaCm.Disconnect(id.Pointer);
}

/// <summary>Hands the connection manager's events for one id, during connection setup, to the task awaiting them.</summary>
internal sealed class CmEventWaiter
{
    private readonly System.Threading.Channels.Channel<CmEvent> _events = System.Threading.Channels.Channel.CreateUnbounded<CmEvent>();

    public void Post(CmEvent e) => _events.Writer.TryWrite(e);

    /// <summary>Waits for the next event; anything but <paramref name="expected"/> throws an <see cref="EndpointException"/> naming it.</summary>
    public async Task ExpectAsync(RdmaCmEventType expected, FabricEndpoint endpoint, string step, TimeSpan timeout, CancellationToken cancellationToken)
    {
        CmEvent e;
        try
        {
            e = await _events.Reader.ReadAsync(cancellationToken).AsTask().WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new EndpointException($"Cannot connect to {endpoint}: {step} took longer than {timeout.TotalSeconds:0.#} s.");
        }
        if (e.Type != expected)
        {
            var cause = e.Type != RdmaCmEventType.Rejected ? $"rdma_cm reported {e}"
                : e.PrivateData.Length > 0 ? $"the server refused the queue pair ({System.Text.Encoding.UTF8.GetString(e.PrivateData).TrimEnd('\0', '.')})"
                : "the server refused the queue pair";
            throw new EndpointException($"Cannot connect to {endpoint}: {cause} while {step}.");
        }
    }
}
