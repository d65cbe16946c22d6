using System.Runtime.InteropServices;

namespace Fabric.Sim.Network.MaxMin;

/// <summary>
/// Incremental exact max-min fair shares. An allocation is max-min fair exactly when every flow has a bottleneck: a
/// saturated channel on which no flow moves faster than it. After flows join or leave some channels, the flows on the
/// changed channels (the region) are re-filled by progressive filling, every other flow held at its rate as
/// background load on the channels they share. The result is kept when no held flow loses its bottleneck: where a
/// channel outside the region carries flows bottlenecked there, its load and its top rate must not move, and a
/// re-filled flow may stop there only at that channel's share. Otherwise the channel joins the region and the fill
/// runs again, so the region grows only as far as the change really reaches (at worst the connected component).
/// Where a group's share is bound to move, the bottlenecks its members cross are taken into the region at once, and
/// theirs in turn (<see cref="AddReach"/>), rather than found one fill at a time.
/// <para>
/// The re-filled flows and the channels they cross are copied once into small dense arrays (<see cref="FillFlow"/>,
/// <see cref="FillChannel"/>), indexed in the order they were first met, so that the fills, which revisit them when the
/// region grows, walk a few kilobytes in order instead of chasing the network's flow and channel state.
/// </para>
/// </summary>
internal sealed class MaxMinFill
{
    private readonly ChannelState _channels;
    private readonly int[] _regionStamp;
    private readonly LocalIndex[] _localOf; // a channel's local index, valid where its stamp is this run's
    private readonly int[] _touchedStamp;
    private int[] _flowStamp = new int[256]; // per flow id: the run that copied it (dense, unlike the flows' state)
    private FillChannel[] _local = new FillChannel[256];
    private int _localCount;
    private FillFlow[] _flows = new FillFlow[256];
    private int[] _crossing = new int[1024]; // each re-filled flow's channels, as local indices, one flow after another
    private int _crossingCount;
    private int[] _crossers = new int[1024]; // each channel's re-filled flows, as local indices, one channel after another
    private readonly List<int> _region = [];
    private readonly List<int> _refilled = [];
    private readonly List<int> _touched = [];
    private readonly Stack<int> _reach = new();
    private readonly PriorityQueue<int, double> _heap = new();
    private readonly List<(int Local, double Share)> _heapItems = [];
    private int _stamp;
    private int _iteration;

    public MaxMinFill(ChannelState channels)
    {
        _channels = channels;
        var n = channels.Count;
        _regionStamp = new int[n];
        _localOf = new LocalIndex[n];
        _touchedStamp = new int[n];
    }

    /// <summary>
    /// Re-fills the flows that the change of <paramref name="dirty"/> can reach: sets their NewGroup and returns them
    /// (their rates are the groups', see <see cref="GroupRate"/>). Nothing in <paramref name="groups"/> or the channel
    /// loads changes here.
    /// </summary>
    public ReadOnlySpan<int> Run(FlowState[] flows, BottleneckGroups groups, ReadOnlySpan<int> dirty)
    {
        ++_stamp;
        if (_flowStamp.Length < flows.Length)
            Array.Resize(ref _flowStamp, flows.Length);
        _region.Clear();
        _refilled.Clear();
        _localCount = 0;
        _crossingCount = 0;
        foreach (var c in dirty)
            AddToRegion(c);
        foreach (var c in dirty)
        {
            if (groups.Members[c] > 0)
                AddReach(c, groups);
        }
        var scanned = 0;
        while (true)
        {
            for (; scanned < _region.Count; scanned++)
            {
                foreach (var id in CollectionsMarshal.AsSpan(_channels.Flows[_region[scanned]]))
                {
                    if (_flowStamp[id] != _stamp)
                        AddFlow(flows, id, groups);
                }
            }
            Fill();
            if (!GrowRegion(groups))
                break;
        }
        var refilled = CollectionsMarshal.AsSpan(_refilled);
        _touched.Clear();
        for (var i = 0; i < refilled.Length; i++)
        {
            ref var f = ref flows[refilled[i]];
            f.NewGroup = _local[_flows[i].NewGroup].Channel;
            Touch(f.Group);
            Touch(f.NewGroup);
        }
        return refilled;
    }

    /// <summary>The groups the last run's flows leave or join.</summary>
    public ReadOnlySpan<int> TouchedGroups => CollectionsMarshal.AsSpan(_touched);

    /// <summary>The rate of group <paramref name="g"/> after the last run (call after the flows have moved).</summary>
    public double GroupRate(int g, BottleneckGroups groups)
    {
        if (groups.Members[g] == 0)
            return 0;
        if (_localOf[g].Stamp == _stamp)
        {
            ref var x = ref _local[_localOf[g].Index];
            if (x.FrozenHere == _iteration && x.IsClosed)
                return x.Share;
        }
        return groups.Rate[g];
    }

    private void Touch(int g)
    {
        if (g >= 0 && _touchedStamp[g] != _stamp)
        {
            _touchedStamp[g] = _stamp;
            _touched.Add(g);
        }
    }

    private void AddToRegion(int c)
    {
        if (_regionStamp[c] == _stamp)
            return;
        _regionStamp[c] = _stamp;
        _region.Add(c);
        if (_localOf[c].Stamp == _stamp)
            _local[_localOf[c].Index].InRegion = true;
    }

    // Copies flow id into the dense arrays, its old rate counted on every channel it crosses.
    private void AddFlow(FlowState[] flows, int id, BottleneckGroups groups)
    {
        ref var f = ref flows[id];
        _flowStamp[id] = _stamp;
        var oldRate = f.Group < 0 ? 0 : groups.Rate[f.Group];
        var i = _refilled.Count;
        _refilled.Add(id);
        if (_flows.Length == i)
            Array.Resize(ref _flows, i * 2);
        var channels = f.Channels;
        if (_crossing.Length < _crossingCount + channels.Length)
            Array.Resize(ref _crossing, Math.Max(_crossing.Length * 2, _crossingCount + channels.Length));
        _flows[i] = new FillFlow { Start = _crossingCount, Count = channels.Length };
        foreach (var c in channels)
        {
            var lc = LocalOf(c, groups);
            _crossing[_crossingCount++] = lc;
            _local[lc].Crossings++;
            _local[lc].OldLoad += oldRate;
        }
        if (f.Group >= 0)
            _local[_localOf[f.Group].Index].OldMembers++; // a flow's group is one of its channels, so it has a local index
    }

    private int LocalOf(int c, BottleneckGroups groups)
    {
        ref var index = ref _localOf[c];
        if (index.Stamp == _stamp)
            return index.Index;
        var lc = _localCount++;
        if (_local.Length == lc)
            Array.Resize(ref _local, lc * 2);
        index = new LocalIndex { Stamp = _stamp, Index = lc };
        _local[lc] = new FillChannel
        {
            Channel = c,
            Capacity = _channels.Capacity[c],
            Load = groups.Load(c),
            Rate = groups.Rate[c],
            Members = groups.Members[c],
            AllCrossings = _channels.Flows[c].Count,
            InRegion = _regionStamp[c] == _stamp,
        };
        return lc;
    }

    // Progressive filling of the re-filled flows over every channel they cross, the held flows' rates taken off the
    // capacity. The channel with the smallest fair share fixes the rate of every unfrozen flow through it; freezing a
    // flow at the smallest share never lowers another channel's share, so a lazy min-heap works: a popped channel
    // whose share has grown since it was pushed goes back in with its current share.
    private void Fill()
    {
        var iteration = ++_iteration;
        var channels = _local.AsSpan(0, _localCount);
        var flows = _flows.AsSpan(0, _refilled.Count);
        var crossing = _crossing.AsSpan(0, _crossingCount);
        var total = 0;
        foreach (ref var x in channels)
        {
            var held = x.InRegion ? 0 : Math.Max(0, x.Load - x.OldLoad);
            x.Residual = x.Capacity - held;
            x.Unfrozen = 0;
            x.Start = total;
            x.NewLoad = 0;
            x.TopRate = 0;
            total += x.Crossings;
        }
        // The re-filled flows crossing each channel, side by side in one array (the channel's own list also holds
        // the held flows, which the fill must not walk).
        if (_crossers.Length < total)
            _crossers = new int[Math.Max(total, _crossers.Length * 2)];
        for (var i = 0; i < flows.Length; i++)
        {
            foreach (var lc in crossing.Slice(flows[i].Start, flows[i].Count))
            {
                ref var x = ref channels[lc];
                _crossers[x.Start + x.Unfrozen++] = i;
            }
        }

        var heap = _heap;
        heap.Clear();
        _heapItems.Clear();
        for (var lc = 0; lc < channels.Length; lc++)
            _heapItems.Add((lc, Math.Max(channels[lc].Residual, 0) / channels[lc].Unfrozen));
        heap.EnqueueRange(_heapItems); // heapified in place: the queue is empty
        // Most channels seen are crossed only by flows that freeze elsewhere first: once every flow is frozen, what
        // is left in the heap would all be skipped.
        var unfrozenFlows = flows.Length;
        while (unfrozenFlows > 0 && heap.TryDequeue(out var bottleneck, out var key))
        {
            ref var b = ref channels[bottleneck];
            var n = b.Unfrozen;
            if (n == 0)
                continue;
            var share = Math.Max(b.Residual, 0) / n;
            if (share > key * (1 + 1e-12) + 1e-15)
            {
                heap.Enqueue(bottleneck, share);
                continue;
            }
            b.Share = Math.Max(share, 1e-12);
            b.FrozenHere = iteration;
            foreach (var i in _crossers.AsSpan(b.Start, b.Crossings))
            {
                ref var f = ref flows[i];
                if (f.FrozenAt == iteration)
                    continue;
                f.FrozenAt = iteration;
                unfrozenFlows--;
                f.NewGroup = bottleneck;
                foreach (var lc in crossing.Slice(f.Start, f.Count))
                {
                    ref var x = ref channels[lc];
                    x.Residual -= share;
                    x.Unfrozen--;
                    x.NewLoad += b.Share;
                    x.TopRate = Math.Max(x.TopRate, b.Share);
                }
            }
        }
    }

    // Adds to the region every channel outside it where a held flow would lose its bottleneck; false when none would.
    private bool GrowRegion(BottleneckGroups groups)
    {
        var grew = false;
        foreach (ref var x in _local.AsSpan(0, _localCount))
        {
            if (x.IsClosed)
                continue;
            var tolerance = 1e-9 * x.Capacity;
            var heldMembers = x.Members - x.OldMembers;
            bool breaks;
            if (heldMembers > 0)
            {
                breaks = Math.Abs(x.NewLoad - x.OldLoad) > tolerance
                    || x.TopRate > x.Rate + tolerance
                    || (x.FrozenHere == _iteration && Math.Abs(x.Share - x.Rate) > tolerance);
            }
            else
            {
                // Held flows cross c but are bottlenecked elsewhere: a re-filled flow stopping at c might be slower
                // than one of them; re-filling them all is the simple safe answer.
                breaks = x.FrozenHere == _iteration;
            }
            if (breaks)
            {
                AddToRegion(x.Channel);
                grew = true;
                if (heldMembers > 0)
                    AddReach(x.Channel, groups);
            }
        }
        return grew;
    }

    // Channel c's group is to change share, so its members' other channels change load: those that are bottlenecks
    // of other groups change share in turn, and so on. They join the region now rather than one fill at a time (the
    // check after the fill still decides; a region larger than needed only re-fills more flows).
    private void AddReach(int c, BottleneckGroups groups)
    {
        _reach.Push(c);
        while (_reach.TryPop(out var g))
        {
            foreach (ref readonly var crossing in groups.ChannelsCrossedBy(g))
            {
                var d = crossing.Other;
                if (groups.Members[d] > 0 && _regionStamp[d] != _stamp)
                {
                    AddToRegion(d);
                    _reach.Push(d);
                }
            }
        }
    }

    private struct LocalIndex
    {
        public int Stamp;
        public int Index;
    }

    // A re-filled flow: where its channels are in the crossing array, and what the last fill gave it.
    private struct FillFlow
    {
        public int Start; // its first channel in the crossing array
        public int Count; // how many channels it crosses
        public int FrozenAt; // the fill iteration that froze it
        public int NewGroup; // the local index of the channel it froze at
    }

    // A channel a re-filled flow crosses: the network's state as the run found it, and the fill's working state.
    private struct FillChannel
    {
        public int Channel; // its id in the network
        public double Capacity;
        public double Load; // the summed rate of every flow crossing it (BottleneckGroups.Load)
        public double Rate; // the share of the flows bottlenecked on it
        public int Members; // how many flows are bottlenecked on it
        public int AllCrossings; // crossings by every flow, held or re-filled
        public bool InRegion; // every flow through it is re-filled: none is held
        public int Crossings; // crossings by re-filled flows
        public int OldMembers; // re-filled flows that were bottlenecked here
        public double OldLoad; // the re-filled flows' rates before
        public int FrozenHere; // the fill iteration that froze flows here
        public int Unfrozen; // re-filled flows through it not yet frozen
        public int Start; // where its re-filled flows begin in the crossers array
        public double NewLoad; // the re-filled flows' rates after
        public double TopRate; // the fastest re-filled flow after
        public double Share; // the share it froze flows at
        public double Residual; // capacity left for the unfrozen flows

        // Every flow on it was re-filled: its share is the fill's own.
        public readonly bool IsClosed => InRegion || AllCrossings == Crossings;
    }
}
