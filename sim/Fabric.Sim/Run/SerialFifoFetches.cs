using Fabric.Sim.Clock;
using Fabric.Sim.Network.Fifo;
using Fabric.Sim.Routing;

namespace Fabric.Sim.Run;

/// <summary>
/// An engine's fetches on a <see cref="FifoNetwork"/>, every engine on the simulation's clock: a fetch is booked when
/// it is issued, so its landing is known at once and needs no event. One connection's fetches queue behind each other
/// on the links they share, so they need no queue of their own.
/// </summary>
internal sealed class SerialFifoFetches(EngineModel engine, Simulation sim, FifoNetwork network, Route[] routeByPool, long bytes, BookedFetches booked)
    : FetchScheduler(engine, knowsLandings: true)
{
    public override void Schedule(long atNs, int kind) => sim.Schedule(atNs, Engine, kind);

    public override void Fetch(int keyIndex, int pool, long nowNs)
    {
        var route = routeByPool[pool];
        booked.Add(keyIndex, network.Book(route.Channels, route.LatencyNs, bytes));
    }
}
