namespace Fabric.Sim.Clock;

/// <summary>Receives the events it scheduled; the kind and arguments mean what the handler says.</summary>
public interface IEventHandler
{
    void OnEvent(int kind, int a, long b);
}

/// <summary>One scheduled event: the handler and its arguments (no allocation per event).</summary>
public readonly record struct SimEvent(IEventHandler Handler, int Kind, int A, long B);

/// <summary>
/// Orders events by time, then by phase (normal before late), then by scheduling order, so that a run is
/// deterministic: two events at the same nanosecond always run in the order they were scheduled.
/// </summary>
public readonly record struct EventKey(long Time, long Order) : IComparable<EventKey>
{
    public int CompareTo(EventKey other)
    {
        var c = Time.CompareTo(other.Time);
        return c != 0 ? c : Order.CompareTo(other.Order);
    }
}

/// <summary>
/// The discrete-event core: a virtual clock in nanoseconds and a priority queue of events. Single-threaded; the
/// handler of an event may schedule more events at the current time or later.
/// </summary>
public sealed class Simulation
{
    private const long LatePhase = 1L << 62;
    private readonly PriorityQueue<SimEvent, EventKey> _queue = new(1024);
    private long _sequence;

    /// <summary>The virtual time in nanoseconds.</summary>
    public long Now { get; private set; }

    /// <summary>Events run so far.</summary>
    public long EventsProcessed { get; private set; }

    /// <summary>Events waiting.</summary>
    public int Pending => _queue.Count;

    /// <summary>Schedules an event at <paramref name="atNs"/> (not before now).</summary>
    public void Schedule(long atNs, IEventHandler handler, int kind, int a = 0, long b = 0) =>
        _queue.Enqueue(new SimEvent(handler, kind, a, b), new EventKey(Math.Max(atNs, Now), ++_sequence));

    /// <summary>Schedules an event that runs after every ordinary event of the same nanosecond (used to batch work).</summary>
    public void ScheduleLate(long atNs, IEventHandler handler, int kind, int a = 0, long b = 0) =>
        _queue.Enqueue(new SimEvent(handler, kind, a, b), new EventKey(Math.Max(atNs, Now), LatePhase | ++_sequence));

    /// <summary>The time of the next event, or null when none is waiting.</summary>
    public long? NextEventTime => _queue.TryPeek(out _, out var key) ? key.Time : null;

    /// <summary>Runs one event; false when none is waiting.</summary>
    public bool Step()
    {
        if (!_queue.TryDequeue(out var e, out var key))
            return false;
        Now = key.Time;
        EventsProcessed++;
        e.Handler.OnEvent(e.Kind, e.A, e.B);
        return true;
    }

    /// <summary>Runs events until none is left or the next lies after <paramref name="untilNs"/>; returns the events run.</summary>
    public long Run(long untilNs = long.MaxValue)
    {
        var start = EventsProcessed;
        while (_queue.TryPeek(out _, out var key) && key.Time <= untilNs)
            Step();
        if (untilNs != long.MaxValue && untilNs > Now)
            Now = untilNs;
        return EventsProcessed - start;
    }
}
