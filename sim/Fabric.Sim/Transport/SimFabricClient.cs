using System.Net;
using Fabric.Sim.Routing;
using Fabric.Transport;

namespace Fabric.Sim.Transport;

/// <summary>A client session at one node reading from a <see cref="SimFabricServer"/> over a modelled route.</summary>
public sealed class SimFabricClient : IFabricClient
{
    private readonly SimFabricServer _server;
    private readonly FabricClientOptions _options;
    private readonly HashSet<SimReadOperation> _pending = [];
    private readonly Lock _gate = new();
    private volatile bool _connected = true;

    internal SimFabricClient(SimFabricServer server, Route route, FabricClientOptions options)
    {
        _server = server;
        Route = route;
        _options = options;
        Session = new ServerSession("sim", new DnsEndPoint(server.Fabric.Topology.Nodes[route.To].Name, 0));
    }

    public FabricEndpoint Endpoint => _server.Endpoint;
    public bool IsConnected => _connected;
    internal Route Route { get; }
    internal SimFabric Fabric => _server.Fabric;
    internal ServerSession Session { get; }

    public ValueTask<ReadStatus> ReadAsync(ReadRequest request, CancellationToken cancellationToken = default)
    {
        var task = Begin(request, cancellationToken, out var op);
        if (op is null)
            return task;
        if (_server.Options.Authorize is null)
            Fabric.Submit(op);
        else
            Authorize(op);
        return task;
    }

    // The server's Authorize may block: it runs off the caller's and the loop's threads, then submits (SimReadOperation.Execute).
    private static void Authorize(SimReadOperation op) => ThreadPool.UnsafeQueueUserWorkItem(op, preferLocal: false);

    // Checks a read and makes its operation (null when it is answered at once); nothing is handed to the loop yet.
    private ValueTask<ReadStatus> Begin(ReadRequest request, CancellationToken cancellationToken, out SimReadOperation? started)
    {
        started = null;
        cancellationToken.ThrowIfCancellationRequested();
        if (!_connected)
            return ValueTask.FromResult(ReadStatus.PeerGone);
        var region = _server.Store.Find(request.RegionId);
        var status = region is null ? ReadStatus.UnknownRegion : region.Check(request.Key, request.Offset, request.Length);
        if (status != ReadStatus.Ok)
        {
            Refused(status);
            return ValueTask.FromResult(status);
        }
        var op = Fabric.Rent();
        op.Reset(this, request, Environment.TickCount64 + (long)_options.OperationTimeout.TotalMilliseconds);
        op.Region = region!;
        lock (_gate)
            _pending.Add(op);
        var task = new ValueTask<ReadStatus>(op, op.Version);
        op.Arm(cancellationToken);
        started = op;
        return task;
    }

    internal void AuthorizeAndSubmit(SimReadOperation op)
    {
        var allowed = _server.Options.Authorize!(Session, op.Region);
        if (allowed)
        {
            Fabric.Submit(op);
            return;
        }
        if (op.TryClaim())
        {
            Refused(ReadStatus.AccessDenied);
            op.Complete(ReadStatus.AccessDenied);
        }
        op.ReleaseFlow();
    }

    private void Refused(ReadStatus status)
    {
        Session.CountRefused();
        _server.Options.ReadServed?.Invoke(Session, status, 0);
    }

    /// <summary>On the loop thread: the flow finished; copy the bytes and complete.</summary>
    internal unsafe void Deliver(SimReadOperation op)
    {
        var r = op.Request;
        new ReadOnlySpan<byte>(op.Region.BaseAddress + r.Offset, r.Length).CopyTo(r.Destination.Span);
        Session.CountRead(r.Length);
        _server.Options.ReadServed?.Invoke(Session, ReadStatus.Ok, r.Length);
        op.Complete(ReadStatus.Ok);
    }

    internal void Forget(SimReadOperation op)
    {
        lock (_gate)
            _pending.Remove(op);
    }

    public async ValueTask ReadBatchAsync(ReadOnlyMemory<ReadRequest> requests, Memory<ReadStatus> statuses, CancellationToken cancellationToken = default)
    {
        if (statuses.Length < requests.Length)
            throw new ArgumentException($"The status list holds {statuses.Length} entries for {requests.Length} reads.", nameof(statuses));
        // Reads issued together start together: their flows join the fabric at one virtual time and share it.
        var tasks = new ValueTask<ReadStatus>[requests.Length];
        var started = new List<SimReadOperation>(requests.Length);
        for (var i = 0; i < tasks.Length; i++)
        {
            tasks[i] = Begin(requests.Span[i], cancellationToken, out var op);
            if (op is not null)
                started.Add(op);
        }
        if (_server.Options.Authorize is null)
        {
            if (started.Count > 0)
                Fabric.Submit(started);
        }
        else
        {
            foreach (var op in started)
                Authorize(op);
        }
        for (var i = 0; i < tasks.Length; i++)
        {
            var status = await tasks[i].ConfigureAwait(false);
            statuses.Span[i] = status;
        }
    }

    public async Task<ControlMessage> CallAsync(ControlMessage request, CancellationToken cancellationToken = default)
    {
        if (!_connected)
            throw new PeerGoneException($"The connection to {Endpoint} is closed.");
        var handler = _server.Options.ControlHandler;
        if (request.Type < ControlTypes.FirstUserType || handler is null)
            throw new ControlException(ControlErrorCode.UnknownMessageType, $"The server does not understand control message type {request.Type}.");
        var answer = Task.Run(async () =>
        {
            try
            {
                return await handler.HandleAsync(Session, request, cancellationToken).ConfigureAwait(false);
            }
            catch (ControlException)
            {
                throw;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new ControlException(ControlErrorCode.Internal, $"The server failed to answer control message type {request.Type}: {e.Message}");
            }
        }, cancellationToken);
        try
        {
            return await answer.WaitAsync(_options.OperationTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{Endpoint} did not answer control message type {request.Type} within {_options.OperationTimeout.TotalMilliseconds:0} ms.");
        }
    }

    internal void ExpireDeadlines(long ticks)
    {
        SimReadOperation[] pending;
        lock (_gate)
        {
            if (_pending.Count == 0)
                return;
            pending = [.. _pending];
        }
        foreach (var op in pending)
        {
            if (op.DeadlineTicks < ticks && op.TryClaim())
                op.Complete(ReadStatus.TimedOut);
        }
    }

    /// <summary>Waits until every pending read has ended.</summary>
    internal async Task DrainAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            lock (_gate)
            {
                if (_pending.Count == 0)
                    return;
            }
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Ends the session: every pending read ends with <paramref name="status"/>.</summary>
    internal void Drop(ReadStatus status)
    {
        _connected = false;
        SimReadOperation[] pending;
        lock (_gate)
            pending = [.. _pending];
        foreach (var op in pending)
        {
            if (op.TryClaim())
                op.Complete(status);
        }
        _server.SessionEnded(this);
    }

    public ValueTask DisposeAsync()
    {
        if (_connected)
            Drop(ReadStatus.PeerGone);
        return ValueTask.CompletedTask;
    }
}
