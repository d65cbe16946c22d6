using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Fabric.Transport.Rdma;

/// <summary>
/// A client of <c>rdma://HOST:PORT</c>: the control channel is a tcp:// connection to the same HOST:PORT, and reads are
/// one-sided RDMA READs on an RC queue pair connected with rdma_cm. Region keys (address, rkey, length) are asked for
/// once per region over the control channel, where the server checks the region key and its Authorize callback.
/// </summary>
public sealed class RdmaFabricClient : IFabricClient
{
    private readonly FabricClientOptions _options;
    private readonly RdmaClientOptions _rdmaOptions;
    private readonly SemaphoreSlim _reconnectGate = new(1, 1);
    private volatile Session _session;
    private int _disposed;

    private RdmaFabricClient(FabricEndpoint endpoint, FabricClientOptions options, RdmaClientOptions rdmaOptions, Session session)
    {
        Endpoint = endpoint;
        _options = options;
        _rdmaOptions = rdmaOptions;
        _session = session;
    }

    public FabricEndpoint Endpoint { get; }

    public bool IsConnected => Volatile.Read(ref _disposed) == 0 && _session.IsHealthy;

    /// <summary>Why the connection failed, naming the verbs status or the rdma_cm event; null while it is healthy.</summary>
    public string? FailureReason => _session.FailureReason;

    /// <summary>The send-queue depth the device granted: at most this many RDMA READ work requests are in flight.</summary>
    public int QueueDepth => _session.Connection.Queue.Depth;

    /// <summary>
    /// Connects to <paramref name="endpoint"/>. Without a usable RDMA device, an unreachable endpoint, or a server that
    /// does not serve RDMA, throws <see cref="EndpointException"/> with one sentence.
    /// </summary>
    public static async ValueTask<IFabricClient> ConnectAsync(FabricEndpoint endpoint, FabricClientOptions options, CancellationToken cancellationToken) =>
        await ConnectAsync(endpoint, options, RdmaClientOptions.Default, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="ConnectAsync(FabricEndpoint, FabricClientOptions, CancellationToken)"/>
    public static async Task<RdmaFabricClient> ConnectAsync(FabricEndpoint endpoint, FabricClientOptions options, RdmaClientOptions rdmaOptions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (endpoint.Scheme != "rdma")
            throw new EndpointException($"{endpoint} is not an rdma:// endpoint.");
        RdmaDevices.EnsureUsable(endpoint);
        options ??= FabricClientOptions.Default;
        rdmaOptions ??= RdmaClientOptions.Default;
        var session = await Session.OpenAsync(endpoint, options, rdmaOptions, cancellationToken).ConfigureAwait(false);
        return new RdmaFabricClient(endpoint, options, rdmaOptions, session);
    }

    /// <summary>
    /// Replaces a broken connection with a new one (control channel, queue pair, region keys); reads still pending on
    /// the old one end with <see cref="ReadStatus.PeerGone"/>. Destination buffers are registered again on first use.
    /// </summary>
    public async Task ReconnectAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await _reconnectGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var fresh = await Session.OpenAsync(Endpoint, _options, _rdmaOptions, cancellationToken).ConfigureAwait(false);
            var old = _session;
            _session = fresh;
            await old.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _reconnectGate.Release();
        }
    }

    public ValueTask<ReadStatus> ReadAsync(ReadRequest request, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled<ReadStatus>(cancellationToken);
        var session = _session;
        if (Volatile.Read(ref _disposed) != 0 || !session.CheckHealthy())
            return new ValueTask<ReadStatus>(ReadStatus.PeerGone);
        return session.Grants.TryGetValue(request.RegionId, out var grant) && grant.Key == request.Key
            ? session.Read(grant, request, _options.OperationTimeout, cancellationToken)
            : ReadFirstAsync(session, request, cancellationToken);
    }

    private async ValueTask<ReadStatus> ReadFirstAsync(Session session, ReadRequest request, CancellationToken cancellationToken)
    {
        var (status, grant) = await session.RequestGrantAsync(request.RegionId, request.Key, cancellationToken).ConfigureAwait(false);
        return status != ReadStatus.Ok ? status : await session.Read(grant!, request, _options.OperationTimeout, cancellationToken).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadBatchAsync(ReadOnlyMemory<ReadRequest> requests, Memory<ReadStatus> statuses, CancellationToken cancellationToken = default)
    {
        if (statuses.Length < requests.Length)
            throw new ArgumentException($"{statuses.Length} statuses cannot hold the results of {requests.Length} reads.", nameof(statuses));
        var pending = System.Buffers.ArrayPool<ValueTask<ReadStatus>>.Shared.Rent(requests.Length);
        Exception? error = null;
        try
        {
            // Every read is posted before the first is awaited, so the whole batch is in flight at once; each one is
            // awaited even after a failure so that no pooled read is left behind.
            for (var i = 0; i < requests.Length; i++)
            {
                try
                {
                    pending[i] = ReadAsync(requests.Span[i], cancellationToken);
                }
                catch (Exception e)
                {
                    error ??= e;
                    pending[i] = new ValueTask<ReadStatus>(ReadStatus.Failed);
                }
            }
            for (var i = 0; i < requests.Length; i++)
            {
                try
                {
                    var status = await pending[i].ConfigureAwait(false);
                    statuses.Span[i] = status;
                }
                catch (OperationCanceledException e)
                {
                    error ??= e;
                }
            }
        }
        finally
        {
            Array.Clear(pending, 0, requests.Length);
            System.Buffers.ArrayPool<ValueTask<ReadStatus>>.Shared.Return(pending);
        }
        if (error is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
    }

    public Task<ControlMessage> CallAsync(ControlMessage request, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _session.Control.CallAsync(request, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await _reconnectGate.WaitAsync().ConfigureAwait(false);
        try
        {
            await _session.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _reconnectGate.Release();
        }
    }

    /// <summary>One control connection plus one queue pair, and the region keys learnt on it.</summary>
    private sealed class Session : IAsyncDisposable
    {
        private Session(IFabricClient control, RdmaConnection connection)
        {
            Control = control;
            Connection = connection;
        }

        public IFabricClient Control { get; }
        public RdmaConnection Connection { get; }
        public ConcurrentDictionary<uint, Grant> Grants { get; } = new();

        private readonly ConcurrentDictionary<(uint, ulong), Task<(ReadStatus, Grant?)>> _asking = new();

        public bool IsHealthy => Connection.Queue.IsHealthy && Control.IsConnected;

        public string? FailureReason =>
            Connection.Queue.FailureReason ?? (Control.IsConnected ? null : "the control connection to the server closed");

        public static async Task<Session> OpenAsync(FabricEndpoint endpoint, FabricClientOptions options, RdmaClientOptions rdmaOptions, CancellationToken cancellationToken)
        {
            var controlEndpoint = endpoint with { Scheme = "tcp" };
            IFabricClient control;
            try
            {
                control = await FabricTransports.ConnectAsync(controlEndpoint, options, cancellationToken).ConfigureAwait(false);
            }
            catch (EndpointException e)
            {
                throw new EndpointException($"Cannot connect to {endpoint}: its control channel ({controlEndpoint}) is unreachable: {e.Message.TrimEnd('.')}.", e);
            }

            try
            {
                RdmaHelloReply hello;
                try
                {
                    hello = await control.CallAsync<RdmaHelloRequest, RdmaHelloReply>(RdmaControlTypes.Hello, new RdmaHelloRequest(1), cancellationToken).ConfigureAwait(false);
                }
                catch (ControlException e) when (e.Code == ControlErrorCode.UnknownMessageType)
                {
                    throw new EndpointException($"{endpoint} does not serve RDMA (it is a tcp:// server without an rdma listener); connect with {controlEndpoint} instead.", e);
                }
                var address = await EndpointAddresses.ResolveAsync(endpoint, cancellationToken, options.ConnectTimeout).ConfigureAwait(false);
                var connection = await RdmaConnection.ConnectAsync(endpoint, address, hello.CmPort, hello.Token, options.ConnectTimeout, rdmaOptions.InlineContinuations, cancellationToken).ConfigureAwait(false);
                return new Session(control, connection);
            }
            catch
            {
                await control.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        /// <summary>True when reads may be posted; notices a dead control channel and breaks the queue pair with it.</summary>
        public bool CheckHealthy()
        {
            if (!Connection.Queue.IsHealthy)
                return false;
            if (Control.IsConnected)
                return true;
            Connection.Queue.Break(ReadStatus.PeerGone, "the control connection to the server closed");
            return false;
        }

        public ValueTask<ReadStatus> Read(Grant grant, ReadRequest request, TimeSpan timeout, CancellationToken cancellationToken)
        {
            if (request.Offset < 0 || request.Offset > grant.Length - request.Length)
                return new ValueTask<ReadStatus>(ReadStatus.OutOfRange);
            if (request.Length == 0)
                return new ValueTask<ReadStatus>(ReadStatus.Ok);
            var destination = Connection.Destinations.Acquire(request.Destination, out var local);
            return Connection.Queue.Submit(local, destination.Lkey, destination, grant.Address + (ulong)request.Offset, grant.Rkey, request.Length, timeout, cancellationToken);
        }

        /// <summary>Asks the server for a region's keys; concurrent first reads of one region share one request.</summary>
        public async Task<(ReadStatus, Grant?)> RequestGrantAsync(uint regionId, ulong key, CancellationToken cancellationToken)
        {
            var question = (regionId, key);
            var answer = _asking.GetOrAdd(question, static (q, session) => session.AskOnceAsync(q), this);
            return await answer.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        private async Task<(ReadStatus, Grant?)> AskOnceAsync((uint RegionId, ulong Key) question)
        {
            // Yield first so that the task is in _asking before it can remove itself.
            await Task.Yield();
            try
            {
                return await AskAsync(question.RegionId, question.Key).ConfigureAwait(false);
            }
            finally
            {
                _asking.TryRemove(question, out _);
            }
        }

        private async Task<(ReadStatus, Grant?)> AskAsync(uint regionId, ulong key)
        {
            try
            {
                var reply = await Control.CallAsync<RdmaRegionGrantRequest, RdmaRegionGrant>(RdmaControlTypes.RegionGrant, new RdmaRegionGrantRequest(regionId, key)).ConfigureAwait(false);
                var grant = new Grant(key, reply.Address, reply.Rkey, reply.Length);
                Grants[regionId] = grant;
                return (ReadStatus.Ok, grant);
            }
            catch (ControlException e)
            {
                return (e.Code switch
                {
                    ControlErrorCode.NotFound => ReadStatus.UnknownRegion,
                    ControlErrorCode.Unauthorized => ReadStatus.AccessDenied,
                    _ => ReadStatus.Failed,
                }, null);
            }
            catch (PeerGoneException)
            {
                return (ReadStatus.PeerGone, null);
            }
            catch (TimeoutException)
            {
                return (ReadStatus.TimedOut, null);
            }
            catch (ObjectDisposedException)
            {
                return (ReadStatus.PeerGone, null);
            }
        }

        public async ValueTask DisposeAsync()
        {
            // Disposing from an inline continuation would make the polling thread wait for itself.
            if (Connection.Queue.IsPollingThread)
                await Task.Yield();
            Connection.Dispose();
            await Control.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>What one region's reads need, learnt from the server with the key they were granted for.</summary>
    private sealed record Grant(ulong Key, ulong Address, uint Rkey, long Length);
}
