using System.Collections.Concurrent;
using Fabric.Sim.Network;
using Fabric.Sim.Run;
using Fabric.Transport;

namespace Fabric.Sim.Transport;

/// <summary>
/// The simulated fabric behind <c>sim://NODE</c>: a topology whose event loop runs on its own thread. Servers export
/// a <see cref="RegionStore"/> at a node; clients at another node read from them, and each read is a flow from the
/// server's node to the client's over the modelled links. A read completes when its flow completes on the virtual
/// clock — the bytes are copied then. Virtual time runs as fast as the events allow: whenever nothing is left to
/// simulate, the loop waits for the next request in real time, so test code that awaits reads sees them finish.
/// </summary>
public sealed class SimFabric : IAsyncDisposable, IFlowListener
{
    private static readonly ConcurrentDictionary<string, SimFabricServer> Servers = new(StringComparer.Ordinal);
    private readonly SimWorld _world;
    private readonly ConcurrentQueue<SimReadOperation> _inbox = new();
    private readonly Lock _inboxGate = new(); // a batch lands in the inbox whole: the loop drains it under this lock
    private readonly ConcurrentBag<SimReadOperation> _pool = [];
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _loop;
    private readonly List<SimReadOperation?> _inFlight = [];
    private readonly Stack<int> _freeIds = new();
    private readonly CancellationTokenSource _stop = new();
    private long _now;

    /// <param name="topology">The modelled machine(s).</param>
    /// <param name="defaultClientNode">Where clients that connect through <see cref="FabricTransports"/> sit.</param>
    public SimFabric(Topology.Topology topology, string defaultClientNode)
    {
        _world = new SimWorld(topology);
        DefaultClientNode = topology.Get(defaultClientNode).Name;
        _loop = new Thread(Loop) { IsBackground = true, Name = $"sim-fabric {topology.Name}" };
        _loop.Start();
        Default = this;
    }

    /// <summary>The fabric that <c>sim://</c> endpoints resolve against when a server is started by URI.</summary>
    public static SimFabric? Default { get; set; }

    public Topology.Topology Topology => _world.Topology;

    /// <summary>The virtual time in ns (advanced by the loop thread).</summary>
    public long Now => Interlocked.Read(ref _now);

    public string DefaultClientNode { get; set; }

    /// <summary>Installs the sim:// client connector and server starter in the transport registries (idempotent).</summary>
    public static void Register()
    {
        FabricTransports.RegisterClient("sim", static (endpoint, options, _) => ConnectByName(endpoint, options));
        FabricServers.Register("sim", static (listen, store, options, _) =>
        {
            var fabric = Default ?? throw new EndpointException($"Cannot serve {listen}: no simulated fabric runs in this process.");
            return Task.FromResult<IFabricServer>(fabric.StartServer(listen.Host, store, options));
        });
    }

    /// <summary>Exports <paramref name="store"/> (still owned by the caller) at <paramref name="node"/>.</summary>
    public SimFabricServer StartServer(string node, RegionStore store, FabricServerOptions? options = null)
    {
        var n = Topology.Find(node) ?? throw new EndpointException($"Cannot serve sim://{node}: topology '{Topology.Name}' has no node '{node}'.");
        var server = new SimFabricServer(this, n.Id, new FabricEndpoint("sim", n.Name, 0, ""), store, options ?? FabricServerOptions.Default);
        Servers[n.Name] = server;
        return server;
    }

    /// <summary>Connects a client at <paramref name="clientNode"/> (default: <see cref="DefaultClientNode"/>) to the server at <paramref name="serverNode"/>.</summary>
    public IFabricClient Connect(string serverNode, string? clientNode = null, FabricClientOptions? options = null)
    {
        if (!Servers.TryGetValue(serverNode, out var server) || server.Fabric != this || !server.Accepting)
            throw new EndpointException($"Nothing serves sim://{serverNode} in this process.");
        var client = Topology.Find(clientNode ?? DefaultClientNode) ?? throw new EndpointException($"Topology '{Topology.Name}' has no client node '{clientNode}'.");
        var route = _world.Router.Find(server.NodeId, client.Id)
            ?? throw new EndpointException($"sim://{serverNode} is unreachable from {client.Name}: no path in topology '{Topology.Name}'.");
        return server.Accept(route, options ?? FabricClientOptions.Default);
    }

    private static ValueTask<IFabricClient> ConnectByName(FabricEndpoint endpoint, FabricClientOptions options)
    {
        if (!Servers.TryGetValue(endpoint.Host, out var server) || !server.Accepting)
            throw new EndpointException($"Nothing serves {endpoint} in this process.");
        return ValueTask.FromResult(server.Fabric.Connect(endpoint.Host, null, options));
    }

    internal void Unregister(SimFabricServer server) => Servers.TryRemove(new KeyValuePair<string, SimFabricServer>(server.Endpoint.Host, server));

    internal SimReadOperation Rent() => _pool.TryTake(out var op) ? op : new SimReadOperation();

    internal void Return(SimReadOperation op)
    {
        op.Client = null!;
        op.Region = null!;
        op.Request = default;
        _pool.Add(op);
    }

    /// <summary>Hands a checked read to the loop thread, which starts its flow at the current virtual time.</summary>
    internal void Submit(SimReadOperation op)
    {
        _inbox.Enqueue(op);
        _wake.Release();
    }

    /// <summary>Hands reads issued together to the loop thread at once, so that their flows start at one virtual time.</summary>
    internal void Submit(IReadOnlyList<SimReadOperation> ops)
    {
        lock (_inboxGate)
        {
            foreach (var op in ops)
                _inbox.Enqueue(op);
        }
        _wake.Release();
    }

    private void Loop()
    {
        var sim = _world.Simulation;
        var lastDeadlineCheck = Environment.TickCount64;
        while (!_stop.IsCancellationRequested)
        {
            lock (_inboxGate)
            {
                while (_inbox.TryDequeue(out var op))
                    StartFlow(op);
            }
            if (sim.Pending > 0)
            {
                // Run a slice, then look at the inbox again so that new reads join at the right virtual time.
                for (var i = 0; i < 4096 && sim.Step(); i++)
                {
                }
                Interlocked.Exchange(ref _now, sim.Now);
            }
            else
            {
                _wake.Wait(20);
            }
            var ticks = Environment.TickCount64;
            if (ticks - lastDeadlineCheck >= 10)
            {
                lastDeadlineCheck = ticks;
                ExpireDeadlines(ticks);
            }
        }
    }

    private void StartFlow(SimReadOperation op)
    {
        if (op.IsClaimed)
        {
            op.ReleaseFlow();
            return;
        }
        var id = _freeIds.Count > 0 ? _freeIds.Pop() : _inFlight.Count;
        if (id == _inFlight.Count)
            _inFlight.Add(op);
        else
            _inFlight[id] = op;
        op.Id = id;
        var route = op.Client.Route;
        _world.Network.Start(route.Channels, route.LatencyNs, op.Request.Length, this, id);
    }

    void IFlowListener.OnFlowCompleted(int flow, long tag)
    {
        var op = _inFlight[(int)tag]!;
        _inFlight[(int)tag] = null;
        _freeIds.Push((int)tag);
        op.Id = -1;
        Interlocked.Exchange(ref _now, _world.Simulation.Now);
        if (op.TryClaim())
            op.Client.Deliver(op);
        op.ReleaseFlow();
    }

    private void ExpireDeadlines(long ticks)
    {
        foreach (var server in Servers.Values)
        {
            if (server.Fabric == this)
                server.ExpireDeadlines(ticks);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _wake.Release();
        _loop.Join();
        foreach (var (name, server) in Servers)
        {
            if (server.Fabric == this)
                Servers.TryRemove(new KeyValuePair<string, SimFabricServer>(name, server));
        }
        if (Default == this)
            Default = null;
        _stop.Dispose();
        _wake.Dispose();
    }
}
