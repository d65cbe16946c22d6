using Fabric.Transport.Tcp;

namespace Fabric.Transport.Rdma;

/// <summary>
/// Serves a <see cref="RegionStore"/> on <c>rdma://HOST:PORT</c>: a tcp:// control channel on HOST:PORT (which also
/// answers plain tcp:// clients) and an rdma_cm listener on the same host whose port the control channel tells
/// clients. Reads are RDMA READs the adapter serves without this process, so <see cref="FabricServerOptions.ReadServed"/>
/// hears only of refusals (as with shm://). The store stays owned by the caller and must outlive the server.
/// </summary>
public sealed class RdmaFabricServer : IFabricServer
{
    private readonly TcpFabricServer _control;
    private readonly RdmaListener _listener;
    private int _stopped;

    private RdmaFabricServer(TcpFabricServer control, RdmaListener listener, FabricEndpoint endpoint)
    {
        _control = control;
        _listener = listener;
        Endpoint = endpoint;
    }

    public FabricEndpoint Endpoint { get; }

    public int SessionCount => _control.SessionCount;

    /// <summary>The rdma_cm port of the queue-pair listener.</summary>
    public int CmPort => _listener.CmPort;

    /// <summary>
    /// Starts serving. Without a usable RDMA device, or when HOST is not an address of one, throws
    /// <see cref="EndpointException"/> with one sentence.
    /// </summary>
    public static async Task<RdmaFabricServer> StartAsync(FabricEndpoint listen, RegionStore store, FabricServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(listen);
        ArgumentNullException.ThrowIfNull(store);
        if (listen.Scheme != "rdma")
            throw new EndpointException($"{listen} is not an rdma:// endpoint.");
        RdmaDevices.EnsureUsable(listen);
        options ??= FabricServerOptions.Default;
        var address = await EndpointAddresses.ResolveAsync(listen, cancellationToken).ConfigureAwait(false);
        var listener = RdmaListener.Start(listen, address, store, options);
        try
        {
            var inner = options;
            var controlOptions = options with
            {
                ControlHandler = new RdmaControlHandler(listener, inner.ControlHandler),
                SessionClosed = session =>
                {
                    listener.OnSessionClosed(session);
                    inner.SessionClosed?.Invoke(session);
                },
            };
            TcpFabricServer control;
            try
            {
                control = await TcpFabricServer.StartAsync(listen with { Scheme = "tcp" }, store, controlOptions, cancellationToken).ConfigureAwait(false);
            }
            catch (EndpointException e)
            {
                throw new EndpointException($"Cannot serve {listen}: its tcp control channel failed ({e.Message.TrimEnd('.')}).", e);
            }
            return new RdmaFabricServer(control, listener, listen with { Port = control.Endpoint.Port });
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        await _control.StopAsync(cancellationToken).ConfigureAwait(false);
        Stop();
    }

    /// <summary>Drops every connection at once, as a crashed process would.</summary>
    public void Abort()
    {
        _control.Abort();
        Stop();
    }

    public async ValueTask DisposeAsync()
    {
        await _control.DisposeAsync().ConfigureAwait(false);
        Stop();
    }

    private void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 0)
            _listener.Dispose();
    }

    /// <summary>Answers the rdma control messages and passes every other one to the layer above.</summary>
    private sealed class RdmaControlHandler(RdmaListener listener, IControlHandler? inner) : IControlHandler
    {
        public ValueTask<ControlMessage> HandleAsync(ServerSession session, ControlMessage request, CancellationToken cancellationToken)
        {
            switch (request.Type)
            {
                case RdmaControlTypes.Hello:
                    request.Read<RdmaHelloRequest>();
                    return ValueTask.FromResult(ControlMessage.Create(RdmaControlTypes.Hello, listener.Hello(session)));
                case RdmaControlTypes.RegionGrant:
                    var grant = listener.Grant(session, request.Read<RdmaRegionGrantRequest>());
                    return ValueTask.FromResult(ControlMessage.Create(RdmaControlTypes.RegionGrant, grant));
                default:
                    return inner is not null
                        ? inner.HandleAsync(session, request, cancellationToken)
                        : throw new ControlException(ControlErrorCode.UnknownMessageType, $"The server does not understand control message type {request.Type}.");
            }
        }
    }
}
