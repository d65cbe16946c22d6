using System.Runtime.InteropServices;

namespace Fabric.Sim.Network.MaxMin;

/// <summary>
/// The flows whose bottleneck is channel g all move at one rate, g's fair share. Each group counts the bytes every
/// member has moved since it formed (its virtual clock, <see cref="Served"/>) and keeps its members in a heap by the
/// count at which each is done, so a change of share costs one update (and one move of the group's due time, see
/// <see cref="NextDue"/> and <see cref="DueGroups"/>) however many members it has.
/// Heap entries of flows that left are skipped when they surface. A channel's load is the sum over the groups whose
/// members cross it of crossings × share, so a change of share moves every channel's load at once. Each crossing
/// count is listed twice, under the channel and under the group, so that both "who loads this channel" and "which
/// channels do this group's members load" are walks of a short list.
/// </summary>
internal sealed class BottleneckGroups
{
    private readonly List<Crossing>?[] _byChannel;
    private readonly List<Crossing>?[] _byGroup;
    private readonly PriorityQueue<(int Flow, int Version), double>?[] _finish;
    private readonly double[] _rate;
    private readonly double[] _load;

    public BottleneckGroups(int channels)
    {
        _byChannel = new List<Crossing>?[channels];
        _byGroup = new List<Crossing>?[channels];
        Blocked = new int[channels];
        _rate = new double[channels];
        _load = new double[channels];
        Served = new double[channels];
        Time = new long[channels];
        Members = new int[channels];
        _finish = new PriorityQueue<(int, int), double>?[channels];
    }

    /// <summary>Bytes per ns each member moves (set with <see cref="SetRate"/>).</summary>
    public ReadOnlySpan<double> Rate => _rate;

    /// <summary>Bytes each member has moved since the group formed, as of <see cref="Time"/>.</summary>
    public double[] Served { get; }

    public long[] Time { get; }

    public int[] Members { get; }

    /// <summary>
    /// Per group: crossings by its members of other channels that are themselves bottlenecks of some flow. While it is
    /// 0, slowing the group's members down frees capacity only where no flow is waiting for it.
    /// </summary>
    public int[] Blocked { get; }

    /// <summary>
    /// The summed rate of the flows crossing channel <paramref name="c"/>, bytes per ns: kept up to date as shares and
    /// crossings change, so reading it is O(1).
    /// </summary>
    public double Load(int c) => _load[c];

    /// <summary>Sets group <paramref name="g"/>'s share, moving the load of every channel its members cross.</summary>
    public void SetRate(int g, double rate)
    {
        var change = rate - _rate[g];
        if (change == 0)
            return;
        _rate[g] = rate;
        foreach (ref readonly var x in ChannelsCrossedBy(g))
            _load[x.Other] += x.Count * change;
    }

    /// <summary>How many times members of group <paramref name="g"/> cross channel <paramref name="c"/>.</summary>
    public int CrossingsBy(int c, int g)
    {
        if (_byChannel[c] is { } list)
        {
            foreach (ref readonly var x in CollectionsMarshal.AsSpan(list))
            {
                if (x.Other == g)
                    return x.Count;
            }
        }
        return 0;
    }

    /// <summary>The channels that members of group <paramref name="g"/> cross (Other), each with how many times (Count).</summary>
    public ReadOnlySpan<Crossing> ChannelsCrossedBy(int g) => _byGroup[g] is { } list ? CollectionsMarshal.AsSpan(list) : default;

    /// <summary>The groups whose members cross channel <paramref name="c"/> (Other), each with how many times (Count).</summary>
    public ReadOnlySpan<Crossing> GroupsCrossing(int c) => _byChannel[c] is { } list ? CollectionsMarshal.AsSpan(list) : default;

    /// <summary>Brings the group's served count up to <paramref name="now"/> at its current rate.</summary>
    public void Advance(int g, long now)
    {
        Served[g] += Rate[g] * (now - Time[g]);
        Time[g] = now;
    }

    /// <summary>Makes <paramref name="flow"/> a member of group <paramref name="g"/>, done when the group has served <paramref name="finishAt"/>.</summary>
    public void Join(int g, int flow, FlowState[] flows, double finishAt)
    {
        ref var f = ref flows[flow];
        f.Group = g;
        f.FinishAt = finishAt;
        (_finish[g] ??= new PriorityQueue<(int, int), double>()).Enqueue((flow, f.Version), finishAt);
        foreach (var c in f.Channels)
        {
            Cross(c, g, +1);
            if (c != g && Members[c] > 0)
                Blocked[g]++;
        }
        if (++Members[g] == 1)
            BottleneckAppeared(g, +1);
    }

    /// <summary>Takes <paramref name="flow"/> out of its group (its heap entry goes stale).</summary>
    public void Leave(int flow, FlowState[] flows)
    {
        ref var f = ref flows[flow];
        var g = f.Group;
        foreach (var c in f.Channels)
        {
            Cross(c, g, -1);
            if (c != g && Members[c] > 0)
                Blocked[g]--;
        }
        f.Group = -1;
        f.Version++;
        if (--Members[g] == 0)
            BottleneckAppeared(g, -1);
    }

    // Channel c became (or stopped being) the bottleneck of some flow: every other group crossing it is (un)blocked.
    private void BottleneckAppeared(int c, int delta)
    {
        foreach (ref readonly var x in GroupsCrossing(c))
        {
            if (x.Other != c)
                Blocked[x.Other] += delta * x.Count;
        }
    }

    private void Cross(int c, int g, int delta)
    {
        _load[c] += delta * _rate[g];
        var byChannel = _byChannel[c] ??= [];
        var byGroup = _byGroup[g] ??= [];
        var span = CollectionsMarshal.AsSpan(byChannel);
        for (var i = 0; i < span.Length; i++)
        {
            if (span[i].Other == g)
            {
                var mirror = span[i].Mirror;
                span[i].Count += delta;
                CollectionsMarshal.AsSpan(byGroup)[mirror].Count += delta;
                if (span[i].Count == 0)
                {
                    SwapRemove(byChannel, i, _byGroup);
                    SwapRemove(byGroup, mirror, _byChannel);
                    if (byChannel.Count == 0)
                        _load[c] = 0; // no rounding left behind on an idle channel
                }
                return;
            }
        }
        byChannel.Add(new Crossing(g, delta, byGroup.Count));
        byGroup.Add(new Crossing(c, delta, byChannel.Count - 1));
    }

    // Removes entry i by moving the last entry into its place, and tells that entry's mirror where it went.
    private static void SwapRemove(List<Crossing> list, int i, List<Crossing>?[] mirrors)
    {
        var last = list.Count - 1;
        if (i != last)
        {
            var moved = list[last];
            list[i] = moved;
            CollectionsMarshal.AsSpan(mirrors[moved.Other])[moved.Mirror].Mirror = i;
        }
        list.RemoveAt(last);
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

    /// <summary>
    /// When the group's next member is done, ns (not before <paramref name="now"/>); -1 for a group with no member
    /// left, which resets.
    /// </summary>
    public long NextDue(int g, FlowState[] flows, long now)
    {
        if (Members[g] == 0 || !TryPeekEarliest(g, flows, out _, out var finishAt))
        {
            _finish[g]?.Clear();
            Served[g] = 0;
            Time[g] = now;
            _rate[g] = 0; // an empty group crosses nothing, so no load moves
            return -1;
        }
        var left = finishAt - Served[g];
        return left <= 0 ? now : now + (long)Math.Min(Math.Ceiling(left / Rate[g]), 1e17);
    }
}

/// <summary>
/// A crossing count: in a channel's list, Other is the group whose members cross it; in a group's list, Other is the
/// channel they cross. Mirror is the index of the same count in the other list.
/// </summary>
internal struct Crossing(int other, int count, int mirror)
{
    public int Other = other;
    public int Count = count;
    public int Mirror = mirror;
}
