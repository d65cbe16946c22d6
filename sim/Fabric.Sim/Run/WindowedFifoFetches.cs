namespace Fabric.Sim.Run;

/// <summary>
/// An engine's fetches on fifo links run in windows (<see cref="FifoWindows"/>): its events go through its thread's
/// <see cref="FifoWindows.Group"/>, and its fetches are booked at the end of the window they are issued in. An engine
/// that needs a landing not booked yet waits there (parks) and goes on when the group has handed it the bookings.
/// </summary>
internal sealed class WindowedFifoFetches(EngineModel engine, FifoWindows.Group group, BookedFetches booked)
    : FetchScheduler(engine, knowsLandings: true)
{
    private int _pendingKind;
    private long _parkedAt = -1;
    private bool _parkedBeforeVisit;

    /// <summary>The engine's index: the group's order among engines due at the same time.</summary>
    public int Index { get; } = engine.Index;

    public override void Schedule(long atNs, int kind)
    {
        _pendingKind = kind;
        group.Schedule(this, atNs);
    }

    public override void Fetch(int keyIndex, int pool, long nowNs) => group.Fetch(Index, booked, keyIndex, pool, nowNs);

    // An engine that worked ahead to the window's end or past it may find there fetches of its own that have landed,
    // issued in this window and not booked yet: it waits for the window's bookings (parks) and begins the visit then,
    // so that its pager sees them landed, as it would on the simulation's clock, and the run does not depend on where
    // the windows end.
    public override bool WaitsBeforeVisit(long nowNs)
    {
        if (booked.Unbooked == 0 || nowNs < group.EndNs)
            return false;
        _parkedAt = nowNs;
        _parkedBeforeVisit = true;
        group.Park(this);
        return true;
    }

    public override void WaitForBookings(long startNs)
    {
        _parkedAt = startNs;
        group.Park(this);
    }

    public override int WarmRoute(int pool) => group.WarmRoute(Index, pool);

    /// <summary>Runs the engine's one pending event, due at <paramref name="nowNs"/>.</summary>
    public void RunPending(long nowNs) => Engine.Run(_pendingKind, nowNs);

    /// <summary>Goes on from where the engine waited for its window's bookings.</summary>
    public void Resume()
    {
        var start = _parkedAt;
        var beginsVisit = _parkedBeforeVisit;
        _parkedAt = -1;
        _parkedBeforeVisit = false;
        Engine.ResumeAt(start, beginsVisit);
    }

    /// <summary>
    /// Reads, without changing anything, what the engine's next event will touch, so that it is in the cache when the
    /// event runs: a thread waiting for the other threads at a window's end does this for its next window's engines.
    /// </summary>
    public int Warm() => booked.Warm() + Engine.Warm(beginsVisit: _parkedBeforeVisit);
}
