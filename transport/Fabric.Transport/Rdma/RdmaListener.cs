using System.Net;
using System.Security.Cryptography;
using Fabric.Common;
using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Rdma;

/// <summary>
/// The server's rdma_cm side: listens on an ephemeral port of the served address, accepts a queue pair only from a
/// client that presents a token issued on its authenticated control session, and registers each region with each
/// device once (IBV_ACCESS_REMOTE_READ only). It never touches a read: RDMA READs are served by the adapter.
/// </summary>
internal sealed unsafe class RdmaListener : IDisposable
{
    private readonly CmEventLoop _loop;
    private readonly SafeCmId _listenId;
    private readonly RegionStore _store;
    private readonly FabricServerOptions _options;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ServerSession> _tokens = [];
    private readonly Dictionary<long, Peer> _peersBySession = [];
    private readonly Dictionary<nint, DeviceResources> _devices = [];
    private bool _disposed;

    private RdmaListener(CmEventLoop loop, SafeCmId listenId, RegionStore store, FabricServerOptions options, int cmPort)
    {
        _loop = loop;
        _listenId = listenId;
        _store = store;
        _options = options;
        CmPort = cmPort;
    }

    /// <summary>The rdma_cm port clients connect their queue pair to (told to them over the control channel).</summary>
    public int CmPort { get; }

    public static RdmaListener Start(FabricEndpoint endpoint, IPAddress address, RegionStore store, FabricServerOptions options)
    {
        var loop = new CmEventLoop($"rdma-cm {endpoint}");
        SafeCmId? id = null;
        try
        {
            id = loop.CreateId();
            var bind = SocketAddresses.From(address, 0);
            var rc = RdmaCm.BindAddr(id.Pointer, &bind);
            if (rc != 0)
            {
                var e = Verbs.Error("rdma_bind_addr", System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
                throw new EndpointException($"Cannot serve {endpoint}: {address} is not an address of an RDMA device here ({e.Message.TrimEnd('.')}).", e);
            }
            Verbs.Check(RdmaCm.Listen(id.Pointer, 64), "rdma_listen");
            var port = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(RdmaCm.GetSrcPort(id.Pointer));
            var listener = new RdmaListener(loop, id, store, options, port);
            loop.Register(id, listener.OnListenEvent);
            // Bound to one device already: register the regions now rather than on the first client's time.
            if (id.Pointer->Verbs != null)
                lock (listener._gate)
                    listener.DeviceFor(id.Pointer->Verbs).RegisterAll(store);
            return listener;
        }
        catch
        {
            id?.Dispose();
            loop.Dispose();
            throw;
        }
    }

    /// <summary>Issues the one-time token that lets <paramref name="session"/>'s client connect a queue pair.</summary>
    public RdmaHelloReply Hello(ServerSession session)
    {
        var token = RandomNumberGenerator.GetBytes(RdmaControlTypes.TokenBytes);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _tokens[Convert.ToHexString(token)] = session;
        }
        return new RdmaHelloReply(CmPort, token);
    }

    /// <summary>The keys of one region for the session's queue pair, after the same checks a tcp read gets.</summary>
    public RdmaRegionGrant Grant(ServerSession session, RdmaRegionGrantRequest request)
    {
        var region = _store.Find(request.RegionId);
        if (region is null)
            throw Refuse(session, ControlErrorCode.NotFound, ReadStatus.UnknownRegion, $"The server exports no region {request.RegionId}.");
        if (region.Key != request.Key || (_options.Authorize is { } authorize && !authorize(session, region)))
            throw Refuse(session, ControlErrorCode.Unauthorized, ReadStatus.AccessDenied, $"This session may not read region {request.RegionId}.");
        lock (_gate)
        {
            if (!_peersBySession.TryGetValue(session.Id, out var peer))
                throw new ControlException(ControlErrorCode.Internal, "Connect the RDMA queue pair before asking for region keys.");
            var rkey = peer.Device.Register(region);
            return new RdmaRegionGrant((ulong)region.BaseAddress, rkey, region.Length);
        }
    }

    private ControlException Refuse(ServerSession session, ControlErrorCode code, ReadStatus status, string message)
    {
        session.CountRefused();
        _options.ReadServed?.Invoke(session, status, 0);
        return new ControlException(code, message);
    }

    /// <summary>The control session ended: its queue pair is disconnected (and destroyed when rdma_cm confirms).</summary>
    public void OnSessionClosed(ServerSession session)
    {
        lock (_gate)
        {
            foreach (var stale in _tokens.Where(t => ReferenceEquals(t.Value, session)).Select(t => t.Key).ToList())
                _tokens.Remove(stale);
            if (_peersBySession.TryGetValue(session.Id, out var peer) && !_disposed)
                RdmaCm.Disconnect(peer.Id.Pointer);
        }
    }

    private void OnListenEvent(CmEvent e)
    {
        if (e.Type != RdmaCmEventType.ConnectRequest)
            return;
        var id = new SafeCmId(e.IdPointer, _loop.Channel);
        lock (_gate)
        {
            // IB pads private data, so the token is the first TokenBytes bytes.
            var token = e.PrivateData.Length >= RdmaControlTypes.TokenBytes ? Convert.ToHexString(e.PrivateData, 0, RdmaControlTypes.TokenBytes) : "";
            if (_disposed || !_tokens.Remove(token, out var session) || _peersBySession.ContainsKey(session.Id))
            {
                Reject(id, "the connect request carried no valid token from this server's control channel");
                return;
            }
            try
            {
                var device = DeviceFor(id.Pointer->Verbs);
                device.CreateQueuePair(id);
                var param = default(RdmaConnParam);
                param.ResponderResources = CmLimits.DeviceMaximum;
                param.InitiatorDepth = CmLimits.DeviceMaximum;
                Verbs.Check(RdmaCm.Accept(id.Pointer, &param), "rdma_accept");
                var peer = new Peer(id, session, device);
                _peersBySession[session.Id] = peer;
                _loop.Register(id, ev => OnPeerEvent(peer, ev));
            }
            catch (Exception failure) when (failure is FabricException or ObjectDisposedException)
            {
                Reject(id, failure.Message);
            }
        }
    }

    /// <summary>Refuses a connect request, telling the client why in the reject's private data.</summary>
    private static void Reject(SafeCmId id, string reason)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(reason);
        var length = Math.Min(bytes.Length, RdmaControlTypes.MaxRejectReasonBytes);
        fixed (byte* data = bytes)
            RdmaCm.Reject(id.Pointer, data, (byte)length);
        id.Dispose();
    }

    private void OnPeerEvent(Peer peer, CmEvent e)
    {
        if (e.Type is RdmaCmEventType.Established or RdmaCmEventType.ConnectResponse)
            return;
        // Disconnected, unreachable, device removal: the queue pair is done.
        lock (_gate)
        {
            if (_peersBySession.TryGetValue(peer.Session.Id, out var current) && ReferenceEquals(current, peer))
                _peersBySession.Remove(peer.Session.Id);
        }
        _loop.Unregister(peer.Id);
        peer.Id.Dispose();
    }

    private DeviceResources DeviceFor(IbvContext* verbs)
    {
        if (!_devices.TryGetValue((nint)verbs, out var device))
        {
            device = DeviceResources.Create(verbs);
            _devices.Add((nint)verbs, device);
        }
        return device;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
        }
        _loop.Dispose();
        foreach (var peer in _peersBySession.Values)
        {
            RdmaCm.Disconnect(peer.Id.Pointer);
            peer.Id.Dispose();
        }
        _peersBySession.Clear();
        _listenId.Dispose();
        foreach (var device in _devices.Values)
            device.Dispose();
        _devices.Clear();
    }

    private sealed record Peer(SafeCmId Id, ServerSession Session, DeviceResources Device);

    /// <summary>Per adapter: a PD, a small CQ for the passive queue pairs, and each region registered once.</summary>
    private sealed class DeviceResources : IDisposable
    {
        private readonly SafeProtectionDomain _pd;
        private readonly SafeCompletionQueue _cq;
        private readonly Dictionary<uint, SafeMemoryRegion> _regions = [];

        private DeviceResources(SafeProtectionDomain pd, SafeCompletionQueue cq)
        {
            _pd = pd;
            _cq = cq;
        }

        public static DeviceResources Create(IbvContext* verbs)
        {
            var pd = new SafeProtectionDomain(Verbs.CheckPointer(IbVerbs.AllocPd(verbs), "ibv_alloc_pd"));
            try
            {
                var cq = new SafeCompletionQueue(Verbs.CheckPointer(IbVerbs.CreateCq(verbs, 64, null, null, 0), "ibv_create_cq"));
                return new DeviceResources(pd, cq);
            }
            catch
            {
                pd.Dispose();
                throw;
            }
        }

        public void RegisterAll(RegionStore store)
        {
            foreach (var region in store.Regions)
                Register(region);
        }

        /// <summary>The rkey of <paramref name="region"/> on this device, registering it on first use.</summary>
        public uint Register(ExportedRegion region)
        {
            if (region.Length == 0)
                return 0;
            if (!_regions.TryGetValue(region.Id, out var mr))
            {
                var native = Verbs.CheckPointer(IbVerbs.RegMr(_pd.Pointer, region.BaseAddress, (nuint)region.Length, IbvAccessFlags.RemoteRead), "ibv_reg_mr");
                mr = new SafeMemoryRegion(native, _pd);
                _regions.Add(region.Id, mr);
            }
            return mr.Rkey;
        }

        /// <summary>A passive RC queue pair: it posts nothing, it only answers RDMA READs.</summary>
        public void CreateQueuePair(SafeCmId id)
        {
            var attr = default(IbvQpInitAttr);
            attr.SendCq = _cq.Pointer;
            attr.RecvCq = _cq.Pointer;
            attr.Cap.MaxSendWr = 1;
            attr.Cap.MaxRecvWr = 1;
            attr.Cap.MaxSendSge = 1;
            attr.Cap.MaxRecvSge = 1;
            attr.QpType = IbvQpType.Rc;
            Verbs.Check(RdmaCm.CreateQp(id.Pointer, _pd.Pointer, &attr), "rdma_create_qp");
            id.Retain(_cq);
            id.Retain(_pd);
        }

        public void Dispose()
        {
            foreach (var mr in _regions.Values)
                mr.Dispose();
            _regions.Clear();
            _cq.Dispose();
            _pd.Dispose();
        }
    }
}
