using Fabric.Sim.Clock;
using Fabric.Sim.Network;
using Fabric.Sim.Routing;

namespace Fabric.Sim.Run;

/// <summary>
/// An engine's fetches as flows of an <see cref="IFlowNetwork"/> (exact max-min sharing), each landing heard as an
/// event. The engine's fetch path serves its fetches from one pool endpoint in order (one connection: a tcp stream, or
/// pool threads on the cores it computes on): a fetch issued while another is in flight has its request latency hidden
/// behind that one and moves its bytes when it ends, so the k-th of a burst lands after L + k·S/B. Fetches from
/// different pool nodes proceed side by side.
/// </summary>
internal sealed class MaxMinFetches : FetchScheduler, IFlowListener
{
    private readonly Simulation _sim;
    private readonly IFlowNetwork _network;
    private readonly Route[] _routeByPool;
    private readonly long _bytes;
    private readonly Queue<int>[] _queued;
    private readonly bool[] _busy;

    /// <param name="engine">The engine whose fetches these are.</param>
    /// <param name="sim">The clock the engine's events run on.</param>
    /// <param name="network">The links the fetches share with every other engine's.</param>
    /// <param name="routeByPool">The engine's route from each pool node (shared, not copied).</param>
    /// <param name="bytes">One expert's bytes.</param>
    public MaxMinFetches(EngineModel engine, Simulation sim, IFlowNetwork network, Route[] routeByPool, long bytes)
        : base(engine, knowsLandings: false)
    {
        _sim = sim;
        _network = network;
        _routeByPool = routeByPool;
        _bytes = bytes;
        _queued = [.. routeByPool.Select(_ => new Queue<int>())];
        _busy = new bool[routeByPool.Length];
    }

    public override void Schedule(long atNs, int kind) => _sim.Schedule(atNs, Engine, kind);

    public override void Fetch(int keyIndex, int pool, long nowNs)
    {
        if (_busy[pool])
        {
            _queued[pool].Enqueue(keyIndex);
            return;
        }
        _busy[pool] = true;
        var route = _routeByPool[pool];
        _network.Start(route.Channels, route.LatencyNs, _bytes, this, keyIndex);
    }

    public void OnFlowCompleted(int flow, long tag)
    {
        var pool = Engine.PoolOf((int)tag);
        if (_queued[pool].TryDequeue(out var queued))
            _network.Start(_routeByPool[pool].Channels, 0, _bytes, this, queued);
        else
            _busy[pool] = false;
        Engine.FetchLanded((int)tag, _sim.Now);
    }
}
