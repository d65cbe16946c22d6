using System.Runtime.InteropServices;

namespace Fabric.Sim.Core;

/// <summary>
/// Incremental exact max-min fair shares. An allocation is max-min fair exactly when every flow has a bottleneck: a
/// saturated channel on which no flow moves faster than it. After flows join or leave some channels, the flows on the
/// changed channels (the region) are re-filled by progressive filling, every other flow held at its rate as
/// background load on the channels they share. The result is kept when no held flow loses its bottleneck: where a
/// channel outside the region carries flows bottlenecked there, its load and its top rate must not move, and a
/// re-filled flow may stop there only at that channel's share. Otherwise the channel joins the region and the fill
/// runs again, so the region grows only as far as the change really reaches (at worst the connected component).
/// </summary>
internal sealed class MaxMinFill
{
    private readonly ChannelState _channels;
    private readonly int[] _regionStamp;
    private readonly int[] _touchedStamp;
    private readonly ChannelFill[] _fill;
    private int[] _crossers = new int[1024];
    private readonly List<int> _region = [];
    private readonly List<int> _seen = [];
    private readonly List<int> _refilled = [];
    private readonly List<int> _touched = [];
    private readonly PriorityQueue<int, double> _heap = new();
    private readonly List<(int Channel, double Share)> _heapItems = [];
    private int _stamp;
    private int _iteration;

    public MaxMinFill(ChannelState channels)
    {
        _channels = channels;
        var n = channels.Count;
        _regionStamp = new int[n];
        _touchedStamp = new int[n];
        _fill = new ChannelFill[n];
    }

    /// <summary>
    /// Re-fills the flows that the change of <paramref name="dirty"/> can reach: sets their NewRate and NewGroup and
    /// returns them. Nothing in <paramref name="groups"/> or the channel loads changes here.
    /// </summary>
    public ReadOnlySpan<int> Run(FlowState[] flows, BottleneckGroups groups, ReadOnlySpan<int> dirty)
    {
        var stamp = ++_stamp;
        _region.Clear();
        _refilled.Clear();
        foreach (var c in dirty)
            AddToRegion(c);
        var scanned = 0;
        while (true)
        {
            for (; scanned < _region.Count; scanned++)
            {
                foreach (var id in CollectionsMarshal.AsSpan(_channels.Flows[_region[scanned]]))
                {
                    ref var f = ref flows[id];
                    if (f.Stamp == stamp)
                        continue;
                    f.Stamp = stamp;
                    f.OldRate = f.Group < 0 ? 0 : groups.Rate[f.Group];
                    _refilled.Add(id);
                }
            }
            Fill(flows, groups);
            if (!GrowRegion(groups))
                break;
        }
        // A re-filled flow stopped on a channel outside the region joins the held flows bottlenecked there, at their rate.
        foreach (var id in CollectionsMarshal.AsSpan(_refilled))
        {
            ref var f = ref flows[id];
            if (!IsClosed(f.NewGroup))
                f.NewRate = groups.Rate[f.NewGroup];
        }
        return CollectionsMarshal.AsSpan(_refilled);
    }

    /// <summary>The groups the last run's flows leave or join (call before they move).</summary>
    public ReadOnlySpan<int> TouchedGroups(FlowState[] flows, ReadOnlySpan<int> refilled)
    {
        _touched.Clear();
        foreach (var id in refilled)
        {
            ref var f = ref flows[id];
            Touch(f.Group);
            Touch(f.NewGroup);
        }
        return CollectionsMarshal.AsSpan(_touched);
    }

    /// <summary>The rate of group <paramref name="g"/> after the last run (call after the flows have moved).</summary>
    public double GroupRate(int g, BottleneckGroups groups)
    {
        if (groups.Members[g] == 0)
            return 0;
        var refilledHere = _fill[g].SeenStamp == _iteration && _fill[g].FrozenHere == _iteration;
        return refilledHere && IsClosed(g) ? _fill[g].Share : groups.Rate[g];
    }

    // Every flow on c was re-filled by the last fill: c's share is the fill's own.
    private bool IsClosed(int c) =>
        _regionStamp[c] == _stamp || (_fill[c].SeenStamp == _iteration && _channels.Flows[c].Count == _fill[c].Crossings);

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
        if (_regionStamp[c] != _stamp)
        {
            _regionStamp[c] = _stamp;
            _region.Add(c);
        }
    }

    // Progressive filling of the re-filled flows over every channel they cross, the held flows' rates taken off the
    // capacity. The channel with the smallest fair share fixes the rate of every unfrozen flow through it; freezing a
    // flow at the smallest share never lowers another channel's share, so a lazy min-heap works: a popped channel
    // whose share has grown since it was pushed goes back in with its current share.
    private void Fill(FlowState[] flows, BottleneckGroups groups)
    {
        var iteration = ++_iteration;
        _seen.Clear();
        foreach (var id in CollectionsMarshal.AsSpan(_refilled))
        {
            ref var f = ref flows[id];
            foreach (var c in f.Channels)
            {
                ref var x = ref _fill[c];
                if (x.SeenStamp != iteration)
                {
                    x.SeenStamp = iteration;
                    _seen.Add(c);
                    x.Crossings = 0;
                    x.OldMembers = 0;
                    x.OldLoad = 0;
                    x.NewLoad = 0;
                    x.TopRate = 0;
                }
                x.Crossings++;
                x.OldLoad += f.OldRate;
            }
            if (f.Group >= 0)
                _fill[f.Group].OldMembers++;
        }
        var total = 0;
        foreach (var c in CollectionsMarshal.AsSpan(_seen))
        {
            ref var x = ref _fill[c];
            var held = _regionStamp[c] == _stamp ? 0 : Math.Max(0, groups.Load(c) - x.OldLoad);
            x.Residual = _channels.Capacity[c] - held;
            x.Unfrozen = 0;
            x.Start = total;
            total += x.Crossings;
        }
        // The re-filled flows crossing each channel, side by side in one array (the channel's own list also holds
        // the held flows, which the fill must not walk).
        if (_crossers.Length < total)
            _crossers = new int[Math.Max(total, _crossers.Length * 2)];
        foreach (var id in CollectionsMarshal.AsSpan(_refilled))
        {
            foreach (var c in flows[id].Channels)
            {
                ref var x = ref _fill[c];
                _crossers[x.Start + x.Unfrozen++] = id;
            }
        }

        var heap = _heap;
        heap.Clear();
        _heapItems.Clear();
        foreach (var c in CollectionsMarshal.AsSpan(_seen))
            _heapItems.Add((c, Math.Max(_fill[c].Residual, 0) / _fill[c].Unfrozen));
        heap.EnqueueRange(_heapItems); // heapified in place: the queue is empty
        // Most channels seen are crossed only by flows that freeze elsewhere first: once every flow is frozen, what
        // is left in the heap would all be skipped.
        var unfrozenFlows = _refilled.Count;
        while (unfrozenFlows > 0 && heap.TryDequeue(out var bottleneck, out var key))
        {
            ref var b = ref _fill[bottleneck];
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
            foreach (var id in _crossers.AsSpan(b.Start, b.Crossings))
            {
                ref var f = ref flows[id];
                if (f.FillStamp == iteration)
                    continue;
                f.FillStamp = iteration;
                unfrozenFlows--;
                f.NewRate = b.Share;
                f.NewGroup = bottleneck;
                foreach (var c in f.Channels)
                {
                    ref var x = ref _fill[c];
                    x.Residual -= share;
                    x.Unfrozen--;
                }
            }
        }
        foreach (var id in CollectionsMarshal.AsSpan(_refilled))
        {
            ref var f = ref flows[id];
            foreach (var c in f.Channels)
            {
                ref var x = ref _fill[c];
                x.NewLoad += f.NewRate;
                x.TopRate = Math.Max(x.TopRate, f.NewRate);
            }
        }
    }

    // Adds to the region every channel outside it where a held flow would lose its bottleneck; false when none would.
    private bool GrowRegion(BottleneckGroups groups)
    {
        var grew = false;
        foreach (var c in CollectionsMarshal.AsSpan(_seen))
        {
            if (IsClosed(c))
                continue;
            var tolerance = 1e-9 * _channels.Capacity[c];
            ref var x = ref _fill[c];
            var heldMembers = groups.Members[c] - x.OldMembers;
            bool breaks;
            if (heldMembers > 0)
            {
                var rate = groups.Rate[c];
                breaks = Math.Abs(x.NewLoad - x.OldLoad) > tolerance
                    || x.TopRate > rate + tolerance
                    || (x.FrozenHere == _iteration && Math.Abs(x.Share - rate) > tolerance);
            }
            else
            {
                // Held flows cross c but are bottlenecked elsewhere: a re-filled flow stopping at c might be slower
                // than one of them; re-filling them all is the simple safe answer.
                breaks = x.FrozenHere == _iteration;
            }
            if (breaks)
            {
                AddToRegion(c);
                grew = true;
            }
        }
        return grew;
    }

    // What one fill keeps per channel, side by side so that a channel's visit touches one place.
    private struct ChannelFill
    {
        public int SeenStamp; // the fill iteration that last saw it
        public int Crossings; // crossings by re-filled flows
        public int OldMembers; // re-filled flows that were bottlenecked here
        public int FrozenHere; // the fill iteration that froze flows here
        public int Unfrozen; // re-filled flows through it not yet frozen
        public int Start; // where its re-filled flows begin in the crossers array
        public double OldLoad; // the re-filled flows' rates before
        public double NewLoad; // and after
        public double TopRate; // the fastest re-filled flow after
        public double Share; // the share it froze flows at
        public double Residual; // capacity left for the unfrozen flows
    }
}
