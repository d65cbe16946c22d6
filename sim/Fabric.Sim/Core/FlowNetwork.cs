using System.Runtime.InteropServices;

namespace Fabric.Sim.Core;

/// <summary>Told when a transfer has delivered its last byte.</summary>
public interface IFlowListener
{
    /// <summary><paramref name="tag"/> is what the starter passed; the flow id may be reused afterwards.</summary>
    void OnFlowCompleted(int flow, long tag);
}

/// <summary>
/// Transfers as fluid flows over directed channels with max-min fair sharing. A flow waits the latency of its path,
/// then joins every channel it crosses; the rates of all flows are the max-min fair allocation (progressive filling),
/// recomputed when a flow joins or leaves, only over the component of flows and channels that the change can reach,
/// and at most once per nanosecond however many flows change in it.
/// Capacities in bytes/s on the outside, bytes/ns inside.
/// </summary>
public sealed class FlowNetwork : IEventHandler
{
    private const int Activate = 0;
    private const int Complete = 1;
    private const int Reallocate = 2;
    private const double DoneBytes = 1e-3;

    private readonly Simulation _sim;
    private readonly double[] _capacity;
    private readonly List<int>[] _channelFlows;
    private readonly double[] _bytesCarried;
    private readonly int[] _channelStamp;
    private readonly double[] _residual;
    private readonly int[] _unfrozen;
    private readonly List<int> _dirty = [];
    private readonly List<int> _componentChannels = [];
    private readonly List<int> _componentFlows = [];
    private readonly Stack<int> _freeIds = new();
    private readonly PriorityQueue<int, double> _heap = new();
    private FlowState[] _flows = new FlowState[256];
    private int _flowCount;
    private int _stamp;
    private bool _reallocateScheduled;
    private readonly long _quantum;

    private struct FlowState
    {
        public int[] Channels;
        public int[] Positions; // index of this flow in each of its channels' flow lists (O(1) removal)
        public double Remaining;
        public double Rate;
        public double NewRate;
        public bool Scheduled;
        public long LastUpdate;
        public int Version;
        public int Stamp;
        public bool Active;
        public bool Frozen;
        public bool InUse;
        public IFlowListener Listener;
        public long Tag;
        public long Bytes;
    }

    /// <param name="sim">The simulation whose clock drives the flows.</param>
    /// <param name="capacityBytesPerSecond">Capacity of every directed channel, indexed by channel id.</param>
    /// <param name="rateQuantumNs">When positive, fair shares are recomputed only on multiples of this many ns (an
    /// approximation for very large runs: a flow joins or frees its share at the next boundary). 0 is exact.</param>
    public FlowNetwork(Simulation sim, IReadOnlyList<double> capacityBytesPerSecond, long rateQuantumNs = 0)
    {
        _quantum = rateQuantumNs;
        _sim = sim;
        var n = capacityBytesPerSecond.Count;
        _capacity = new double[n];
        _channelFlows = new List<int>[n];
        _bytesCarried = new double[n];
        _channelStamp = new int[n];
        _residual = new double[n];
        _unfrozen = new int[n];
        for (var c = 0; c < n; c++)
        {
            _capacity[c] = capacityBytesPerSecond[c] / 1e9;
            _channelFlows[c] = [];
        }
    }

    /// <summary>Flows started and not yet completed.</summary>
    public int LiveFlows => _flowCount - _freeIds.Count;

    /// <summary>Bytes each channel has carried (completed flows only), for utilisation reports.</summary>
    public ReadOnlySpan<double> BytesCarried => _bytesCarried;

    /// <summary>How many times the fair shares were recomputed, and how many flows those recomputations touched.</summary>
    public long Reallocations { get; private set; }
    public long FlowsReallocated { get; private set; }

    /// <summary>The current rate of a live flow in bytes/s (0 while it waits out its latency).</summary>
    public double RateOf(int flow) => _flows[flow].Rate * 1e9;

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
        f.Channels = channels;
        f.Remaining = bytes;
        f.Bytes = bytes;
        f.Rate = 0;
        f.Version++;
        f.Scheduled = false;
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
            case Complete:
                OnComplete(a, (int)b);
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
            Finish(id);
            return;
        }
        f.Active = true;
        f.LastUpdate = _sim.Now;
        var channels = f.Channels;
        if (f.Positions is null || f.Positions.Length < channels.Length)
            f.Positions = new int[channels.Length];
        for (var k = 0; k < channels.Length; k++)
        {
            var c = channels[k];
            f.Positions[k] = _channelFlows[c].Count;
            _channelFlows[c].Add(id);
            _dirty.Add(c);
        }
        ScheduleReallocation();
    }

    private void OnComplete(int id, int version)
    {
        ref var f = ref _flows[id];
        if (!f.InUse || f.Version != version)
            return;
        var channels = f.Channels;
        for (var k = 0; k < channels.Length; k++)
        {
            var c = channels[k];
            RemoveFromChannel(c, f.Positions[k]);
            _bytesCarried[c] += f.Bytes;
            _dirty.Add(c);
        }
        f.Active = false;
        ScheduleReallocation();
        Finish(id);
    }

    /// <summary>Swap-removes the flow at <paramref name="position"/> of channel <paramref name="c"/>'s list.</summary>
    private void RemoveFromChannel(int c, int position)
    {
        var list = _channelFlows[c];
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
        f.Listener = null!;
        f.Channels = null!;
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
        if (_dirty.Count == 0)
            return;
        Reallocations++;
        var stamp = ++_stamp;
        var now = _sim.Now;
        _componentChannels.Clear();
        _componentFlows.Clear();

        // The component: channels reachable from the dirty ones through shared flows.
        var next = 0;
        foreach (var c in CollectionsMarshal.AsSpan(_dirty))
        {
            if (_channelStamp[c] != stamp)
            {
                _channelStamp[c] = stamp;
                _componentChannels.Add(c);
            }
        }
        _dirty.Clear();
        while (next < _componentChannels.Count)
        {
            var c = _componentChannels[next++];
            foreach (var id in CollectionsMarshal.AsSpan(_channelFlows[c]))
            {
                ref var f = ref _flows[id];
                if (f.Stamp == stamp)
                    continue;
                f.Stamp = stamp;
                f.Remaining -= f.Rate * (now - f.LastUpdate);
                f.LastUpdate = now;
                f.Frozen = false;
                _componentFlows.Add(id);
                foreach (var c2 in f.Channels)
                {
                    if (_channelStamp[c2] != stamp)
                    {
                        _channelStamp[c2] = stamp;
                        _componentChannels.Add(c2);
                    }
                }
            }
        }
        FlowsReallocated += _componentFlows.Count;

        foreach (var c in CollectionsMarshal.AsSpan(_componentChannels))
        {
            _residual[c] = _capacity[c];
            _unfrozen[c] = _channelFlows[c].Count;
        }

        // Progressive filling: the channel with the smallest fair share fixes the rate of every flow through it.
        // Freezing a flow at the smallest share never lowers another channel's share, so a lazy min-heap works:
        // a popped channel whose share has grown since it was pushed goes back in with its current share.
        var heap = _heap;
        heap.Clear();
        foreach (var c in CollectionsMarshal.AsSpan(_componentChannels))
        {
            if (_unfrozen[c] > 0)
                heap.Enqueue(c, _residual[c] / _unfrozen[c]);
        }
        while (heap.TryDequeue(out var bottleneck, out var key))
        {
            var n = _unfrozen[bottleneck];
            if (n == 0)
                continue;
            var share = Math.Max(_residual[bottleneck], 0) / n;
            if (share > key * (1 + 1e-12) + 1e-15)
            {
                heap.Enqueue(bottleneck, share);
                continue;
            }
            foreach (var id in CollectionsMarshal.AsSpan(_channelFlows[bottleneck]))
            {
                ref var f = ref _flows[id];
                if (f.Frozen)
                    continue;
                f.Frozen = true;
                f.NewRate = Math.Max(share, 1e-12);
                foreach (var c in f.Channels)
                {
                    _residual[c] -= share;
                    _unfrozen[c]--;
                }
            }
        }

        var horizon = _quantum > 0 ? now + _quantum : long.MaxValue;
        var tick = false;
        foreach (var id in CollectionsMarshal.AsSpan(_componentFlows))
        {
            ref var f = ref _flows[id];
            var unchanged = Math.Abs(f.NewRate - f.Rate) <= 1e-9 * f.Rate;
            f.Rate = f.NewRate;
            var finish = f.Remaining <= DoneBytes ? now : now + (long)Math.Ceiling(f.Remaining / f.Rate);
            if (finish > horizon)
            {
                // Quantised mode: a flow that cannot finish before the next boundary gets no event of its own; the
                // boundary's recomputation looks at it again.
                if (f.Scheduled)
                {
                    f.Version++;
                    f.Scheduled = false;
                }
                _dirty.Add(f.Channels[0]);
                tick = true;
                continue;
            }
            // A flow whose share did not change keeps the completion event it already has.
            if (f.Scheduled && unchanged)
                continue;
            f.Version++;
            f.Scheduled = true;
            _sim.Schedule(finish, this, Complete, id, f.Version);
        }
        if (tick)
        {
            _reallocateScheduled = true;
            _sim.ScheduleLate(horizon, this, Reallocate);
        }
    }
}
