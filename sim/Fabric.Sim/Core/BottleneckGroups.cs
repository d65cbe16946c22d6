namespace Fabric.Sim.Core;

/// <summary>
/// The flows whose bottleneck is channel g all move at one rate, g's fair share. Each group counts the bytes every
/// member has moved since it formed (its virtual clock, <see cref="Served"/>) and keeps its members in a heap by the
/// count at which each is done, so a change of share costs one update and one event however many members it has.
/// Heap entries of flows that left are skipped when they surface.
/// </summary>
internal sealed class BottleneckGroups
{
    private readonly PriorityQueue<(int Flow, int Version), double>?[] _finish;
    private readonly int[] _dueVersion;
    private readonly long[] _dueAt;

    public BottleneckGroups(int channels)
    {
        Rate = new double[channels];
        Served = new double[channels];
        Time = new long[channels];
        Members = new int[channels];
        _finish = new PriorityQueue<(int, int), double>?[channels];
        _dueVersion = new int[channels];
        _dueAt = new long[channels];
        Array.Fill(_dueAt, -1);
    }

    /// <summary>Bytes per ns each member moves.</summary>
    public double[] Rate { get; }

    /// <summary>Bytes each member has moved since the group formed, as of <see cref="Time"/>.</summary>
    public double[] Served { get; }

    public long[] Time { get; }

    public int[] Members { get; }

    /// <summary>Brings the group's served count up to <paramref name="now"/> at its current rate.</summary>
    public void Advance(int g, long now)
    {
        Served[g] += Rate[g] * (now - Time[g]);
        Time[g] = now;
    }

    public void Join(int g, int flow, int version, double finishAt)
    {
        (_finish[g] ??= new PriorityQueue<(int, int), double>()).Enqueue((flow, version), finishAt);
        Members[g]++;
    }

    /// <summary>The member that finishes first, skipping entries of flows that have left.</summary>
    public bool TryPeekEarliest(int g, FlowState[] flows, out int flow, out double finishAt)
    {
        var heap = _finish[g];
        while (heap is not null && heap.TryPeek(out var entry, out finishAt))
        {
            ref var f = ref flows[entry.Flow];
            if (f.InUse && f.Version == entry.Version && f.Group == g)
            {
                flow = entry.Flow;
                return true;
            }
            heap.Dequeue();
        }
        flow = -1;
        finishAt = 0;
        return false;
    }

    public void PopEarliest(int g) => _finish[g]!.Dequeue();

    /// <summary>True (and the event consumed) when <paramref name="version"/> is the group's latest due event.</summary>
    public bool TakeDue(int g, int version)
    {
        if (_dueVersion[g] != version)
            return false;
        _dueAt[g] = -1;
        return true;
    }

    /// <summary>Schedules the group's next completion (unless already scheduled for that instant); an empty group resets.</summary>
    public void ScheduleDue(int g, FlowState[] flows, long now, Simulation sim, IEventHandler handler, int kind)
    {
        if (Members[g] == 0 || !TryPeekEarliest(g, flows, out _, out var finishAt))
        {
            _finish[g]?.Clear();
            Served[g] = 0;
            Time[g] = now;
            Rate[g] = 0;
            _dueVersion[g]++;
            _dueAt[g] = -1;
            return;
        }
        var left = finishAt - Served[g];
        var at = left <= 0 ? now : now + (long)Math.Min(Math.Ceiling(left / Rate[g]), 1e17);
        if (at == _dueAt[g])
            return;
        _dueVersion[g]++;
        _dueAt[g] = at;
        sim.Schedule(at, handler, kind, g, _dueVersion[g]);
    }
}
