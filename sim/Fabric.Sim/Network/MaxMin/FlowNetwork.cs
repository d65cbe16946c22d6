using Fabric.Sim.Clock;

namespace Fabric.Sim.Network.MaxMin;

/// <summary>
/// Transfers as fluid flows over directed channels with max-min fair sharing. A flow waits the latency of its path,
/// then joins every channel it crosses; the rates of all flows are the max-min fair allocation, recomputed when a flow
/// joins or leaves (at most once per nanosecond however many change in it).
/// <para>
/// What keeps this cheap at thousands of flows: (1) bottleneck groups (<see cref="BottleneckGroups"/>): every flow
/// whose bottleneck is channel c moves at c's one fair share, so a change of share is one update, not one per flow,
/// and the groups' next completions wait in one indexed heap (<see cref="DueGroups"/>) behind a single wake-up event,
/// so moving one leaves no stale event behind; (2) local joins and leaves, with the groups that give way to them,
/// skip any re-fill when they are exactly max-min (FlowNetwork.LocalChanges.cs, <see cref="ShareCascade"/>);
/// (3) otherwise an incremental exact re-fill (<see cref="MaxMinFill"/>) of only the flows the change reaches;
/// (4) channels that can never constrain the declared routes are left out (<see cref="RedundantChannels"/>).
/// </para>
/// Capacities in bytes/s on the outside, bytes/ns inside.
/// </summary>
public sealed partial class FlowNetwork : IFlowNetwork, IEventHandler
{
    private const int Activate = 0;
    private const int Wake = 1;
    private const int Reallocate = 2;
    private const double DoneBytes = 1e-3;

    private readonly Simulation _sim;
    private readonly long _quantum;
    private readonly ChannelState _channels;
    private readonly BottleneckGroups _groups;
    private readonly MaxMinFill _fill;
    private readonly ShareCascade _cascade;
    private readonly DirtyChannels _dirty;
    private readonly DueGroups _due;
    private long _wakeAt = long.MaxValue; // the pending wake-up's time; now while one runs
    private int _wakeVersion;
    private readonly Stack<int> _freeIds = new();
    private Dictionary<int[], int[]>? _sharingChannels;
    private FlowState[] _flows = new FlowState[256];
    private int _flowCount;
    private bool _reallocateScheduled;

    /// <param name="sim">The simulation whose clock drives the flows.</param>
    /// <param name="capacityBytesPerSecond">Capacity of every directed channel, indexed by channel id.</param>
    /// <param name="rateQuantumNs">When positive, fair shares are recomputed only on multiples of this many ns (an
    /// approximation: a flow joins or frees its share at the next boundary, and the local cases are not taken). 0 is
    /// exact.</param>
    public FlowNetwork(Simulation sim, IReadOnlyList<double> capacityBytesPerSecond, long rateQuantumNs = 0)
    {
        _sim = sim;
        _quantum = rateQuantumNs;
        _channels = new ChannelState(capacityBytesPerSecond);
        _groups = new BottleneckGroups(_channels.Count);
        _fill = new MaxMinFill(_channels);
        _dirty = new DirtyChannels(_channels.Count);
        _due = new DueGroups(_channels.Count);
        _cascade = new ShareCascade(_channels, _groups, _dirty);
    }

    /// <summary>Flows started and not yet completed.</summary>
    public int LiveFlows => _flowCount - _freeIds.Count;

    /// <summary>Bytes each channel has carried (completed flows only), for utilisation reports.</summary>
    public ReadOnlySpan<double> BytesCarried => _channels.BytesCarried;

    /// <summary>How many times the fair shares were recomputed, and how many flows those recomputations touched.</summary>
    public long Reallocations { get; private set; }
    public long FlowsReallocated { get; private set; }

    /// <summary>When the last flow completed, ns.</summary>
    public long LastCompletionNs { get; private set; }

    /// <summary>Local joins and leaves after which other bottleneck groups gave way (<see cref="ShareCascade"/>).</summary>
    public long CascadedChanges { get; private set; }

    /// <summary>Recomputations that were not local: incremental re-fills (<see cref="MaxMinFill"/>).</summary>
    public long Refills { get; private set; }

    /// <summary>The current rate of a live flow in bytes/s (0 while it waits out its latency).</summary>
    public double RateOf(int flow) => _flows[flow].Group < 0 ? 0 : _groups.Rate[_flows[flow].Group] * 1e9;

    /// <summary>
    /// Declares every route that flows will take from now on, so that channels which can never constrain them drop
    /// out of the sharing computation (<see cref="RedundantChannels"/>); the allocation is unchanged. A flow on an
    /// undeclared route is refused afterwards, since it could load a dropped channel.
    /// </summary>
    public void DeclareRoutes(IReadOnlyCollection<int[]> routes)
    {
        if (LiveFlows > 0)
            throw new InvalidOperationException("Routes are declared before the first flow starts.");
        _sharingChannels = RedundantChannels.Prune(routes, _channels.Capacity);
    }

    /// <summary>The channels a flow on <paramref name="route"/> is shared on (all of them unless routes were declared).</summary>
    public int[] SharingChannels(int[] route) =>
        _sharingChannels is null ? route
        : _sharingChannels.TryGetValue(route, out var sharing) ? sharing
        : throw new InvalidOperationException("A flow was started on a route that was not declared.");

    /// <summary>True while a flow is past its latency and moving bytes (or waiting for its first share).</summary>
    public bool IsTransferring(int flow) => _flows[flow].InUse && _flows[flow].Active;

    /// <summary>
    /// Starts moving <paramref name="bytes"/> over <paramref name="channels"/> (the array is kept, not copied: share
    /// one per route). The listener hears of it after <paramref name="latencyNs"/> plus the transfer time.
    /// </summary>
    public int Start(int[] channels, long latencyNs, long bytes, IFlowListener listener, long tag)
    {
        int id;
        if (_freeIds.Count > 0)
            id = _freeIds.Pop();
        else
        {
            if (_flowCount == _flows.Length)
                Array.Resize(ref _flows, _flows.Length * 2);
            id = _flowCount++;
        }
        ref var f = ref _flows[id];
        f.Route = channels;
        f.Channels = SharingChannels(channels);
        f.Remaining = bytes;
        f.Bytes = bytes;
        f.Group = -1;
        f.Version++;
        f.Active = false;
        f.InUse = true;
        f.Listener = listener;
        f.Tag = tag;
        _sim.Schedule(_sim.Now + latencyNs, this, Activate, id, f.Version);
        return id;
    }

    public void OnEvent(int kind, int a, long b)
    {
        switch (kind)
        {
            case Activate:
                OnActivate(a, (int)b);
                break;
            case Wake:
                OnWake((int)b);
                break;
            default:
                _reallocateScheduled = false;
                Recompute();
                break;
        }
    }

    private void OnActivate(int id, int version)
    {
        ref var f = ref _flows[id];
        if (!f.InUse || f.Version != version)
            return;
        if (f.Channels.Length == 0 || f.Remaining <= DoneBytes)
        {
            foreach (var c in f.Route)
                _channels.BytesCarried[c] += f.Bytes;
            Finish(id);
            return;
        }
        f.Active = true;
        var channels = f.Channels;
        if (f.Positions is null || f.Positions.Length < channels.Length)
            f.Positions = new int[channels.Length];
        for (var k = 0; k < channels.Length; k++)
        {
            var c = channels[k];
            f.Positions[k] = _channels.Flows[c].Count;
            _channels.Flows[c].Add(id);
        }
        if (_quantum == 0 && TryJoinLocally(id))
            return;
        MarkDirty(channels);
    }

    private void MarkDirty(int[] channels)
    {
        foreach (var c in channels)
            _dirty.Add(c);
        ScheduleReallocation();
    }

    // The earliest due group's time has come (unless an earlier wake-up superseded this one): complete every group due
    // by now, including those that completions make due at once, then wake up for the next.
    private void OnWake(int version)
    {
        if (version != _wakeVersion)
            return;
        var now = _sim.Now;
        // While it runs, a group that falls due (now or later) needs no wake-up of its own: this loop or the next one
        // takes it.
        _wakeAt = now;
        while (_due.TryPeek(out var group, out var at) && at <= now)
        {
            _due.Remove(group);
            CompleteDue(group, now);
        }
        _wakeAt = long.MaxValue;
        if (_due.TryPeek(out _, out var next))
            WakeBy(next);
    }

    // The group's earliest finisher is due: complete every member that has moved all its bytes.
    private void CompleteDue(int group, long now)
    {
        _groups.Advance(group, now);
        while (_groups.TryPeekEarliest(group, _flows, out var id, out var finishAt)
            && finishAt - _groups.Served[group] <= DoneBytes + (1e-12 * finishAt))
        {
            _groups.PopEarliest(group);
            Complete(id);
        }
        ScheduleDue(group, now);
    }

    /// <summary>Files group <paramref name="g"/> under its next completion (or out, once it is empty).</summary>
    private void ScheduleDue(int g, long now)
    {
        var at = _groups.NextDue(g, _flows, now);
        if (at < 0)
        {
            _due.Remove(g);
            return;
        }
        _due.Set(g, at);
        WakeBy(at);
    }

    // One wake-up event waits in the simulation's queue for the earliest due group; one that comes too early finds
    // nothing due and waits again, one that would come too late is superseded.
    private void WakeBy(long at)
    {
        if (at >= _wakeAt)
            return;
        _wakeAt = at;
        _sim.Schedule(at, this, Wake, 0, ++_wakeVersion);
    }

    private void Complete(int id)
    {
        ref var f = ref _flows[id];
        var local = _quantum == 0 && LeavesLocally(id);
        _groups.Leave(id, _flows);
        var channels = f.Channels;
        for (var k = 0; k < channels.Length; k++)
        {
            var c = channels[k];
            RemoveFromChannel(c, f.Positions[k]);
            f.Positions[k] = -1; // a later crossing of the same channel must not match this one's old position
        }
        foreach (var c in f.Route)
            _channels.BytesCarried[c] += f.Bytes;
        f.Active = false;
        if (local)
            ApplyShares(_sim.Now);
        else
            MarkDirty(channels);
        Finish(id);
    }

    /// <summary>Swap-removes the flow at <paramref name="position"/> of channel <paramref name="c"/>'s list.</summary>
    private void RemoveFromChannel(int c, int position)
    {
        var list = _channels.Flows[c];
        var last = list.Count - 1;
        if (position != last)
        {
            var moved = list[last];
            list[position] = moved;
            ref var m = ref _flows[moved];
            var movedChannels = m.Channels;
            for (var k = 0; k < movedChannels.Length; k++)
            {
                // Matching the old position too keeps a route that crosses a channel twice right.
                if (movedChannels[k] == c && m.Positions[k] == last)
                {
                    m.Positions[k] = position;
                    break;
                }
            }
        }
        list.RemoveAt(last);
    }

    private void Finish(int id)
    {
        ref var f = ref _flows[id];
        var listener = f.Listener;
        var tag = f.Tag;
        f.InUse = false;
        f.Version++;
        LastCompletionNs = _sim.Now;
        f.Listener = null!;
        f.Channels = null!;
        f.Route = null!;
        _freeIds.Push(id);
        listener.OnFlowCompleted(id, tag);
    }

    private void ScheduleReallocation()
    {
        if (_reallocateScheduled)
            return;
        _reallocateScheduled = true;
        var at = _quantum > 0 ? (_sim.Now + _quantum - 1) / _quantum * _quantum : _sim.Now;
        _sim.ScheduleLate(at, this, Reallocate);
    }

    private void Recompute()
    {
        if (!_dirty.Any)
            return;
        Reallocations++;
        Refills++;
        var now = _sim.Now;
        var changed = _fill.Run(_flows, _groups, _dirty.All);
        _dirty.Clear();
        FlowsReallocated += changed.Length;
        ApplyRates(changed, now);
    }

    // Moves each re-filled flow into the group of its new bottleneck (keeping the bytes it has left), then sets each
    // touched group's share and reschedules its next completion.
    private void ApplyRates(ReadOnlySpan<int> refilled, long now)
    {
        var touched = _fill.TouchedGroups;
        foreach (var g in touched)
            _groups.Advance(g, now);
        foreach (var id in refilled)
        {
            ref var f = ref _flows[id];
            if (f.NewGroup == f.Group)
                continue;
            var remaining = f.Group < 0 ? f.Remaining : f.FinishAt - _groups.Served[f.Group];
            if (f.Group >= 0)
                _groups.Leave(id, _flows);
            _groups.Join(f.NewGroup, id, _flows, _groups.Served[f.NewGroup] + remaining);
        }
        foreach (var g in touched)
        {
            _groups.SetRate(g, _fill.GroupRate(g, _groups));
            ScheduleDue(g, now);
        }
    }
}
