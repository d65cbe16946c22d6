namespace Fabric.Sim.Run;

/// <summary>
/// How one engine's turns and fetches meet the clock: where its own events are scheduled, how its fetches are issued,
/// and how it learns that they landed. One per engine, one implementation per way of running: exact max-min
/// (<see cref="MaxMinFetches"/>), fifo links on the simulation's clock (<see cref="SerialFifoFetches"/>) and fifo
/// links in windows of virtual time (<see cref="WindowedFifoFetches"/>). The engine's visit is the same in all three.
/// </summary>
internal abstract class FetchScheduler(EngineModel engine, bool knowsLandings)
{
    /// <summary>The engine whose fetches these are.</summary>
    protected EngineModel Engine { get; } = engine;

    /// <summary>
    /// True when a fetch's landing is known once it is booked (in the engine's <see cref="BookedFetches"/>): the engine
    /// then works out its turns through the fetched experts at once. False when each landing comes as an event
    /// (<see cref="EngineModel.FetchLanded"/>): the engine takes one turn per event.
    /// </summary>
    public bool KnowsLandings { get; } = knowsLandings;

    /// <summary>Runs the engine's event <paramref name="kind"/> at <paramref name="atNs"/>.</summary>
    public abstract void Schedule(long atNs, int kind);

    /// <summary>Issues the fetch of expert <paramref name="keyIndex"/> (layer × experts + expert) from pool node <paramref name="pool"/> at <paramref name="nowNs"/>.</summary>
    public abstract void Fetch(int keyIndex, int pool, long nowNs);

    /// <summary>
    /// True when the engine, about to begin a visit at <paramref name="nowNs"/>, must first wait for bookings of its
    /// fetches; it then goes on through <see cref="EngineModel.ResumeAt"/>.
    /// </summary>
    public virtual bool WaitsBeforeVisit(long nowNs) => false;

    /// <summary>
    /// The engine, working ahead from <paramref name="startNs"/>, needs the landing of a fetch that is not booked yet:
    /// it waits for the booking and goes on through <see cref="EngineModel.ResumeAt"/>.
    /// </summary>
    public virtual void WaitForBookings(long startNs) =>
        throw new InvalidOperationException($"Engine {Engine.Device.Name} waits for a fetch that was never booked.");

    /// <summary>Reads the route of a fetch from pool node <paramref name="pool"/>, so that it is in the cache when issued; changes nothing.</summary>
    public virtual int WarmRoute(int pool) => 0;
}
