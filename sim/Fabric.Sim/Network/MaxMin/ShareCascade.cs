using System.Runtime.CompilerServices;

namespace Fabric.Sim.Network.MaxMin;

/// <summary>
/// Plans a local change of one bottleneck group's share and what follows from it, without a re-fill. When group g's
/// members speed up or slow down, every channel they cross changes load by the difference. Where such a channel b is
/// itself the bottleneck of other flows (group b), b's capacity is re-shared among b's members: they move by the
/// opposite amount, spread over them, and their own change moves on in the same way. The result is still exactly
/// max-min when every group is reached at most once (the change reaches no channel from two sides), each group's new
/// share stays at least every other rate on its channel, and every other channel whose load moves keeps slack.
/// Typical case: a memory NIC's flows speed up when one leaves, and on the GPU NIC links they cross, the flows
/// bottlenecked there (reading from lightly loaded NICs) give way.
/// </summary>
internal sealed class ShareCascade(ChannelState channels, BottleneckGroups groups, DirtyChannels dirty)
{
    private const double Tolerance = 1e-9;

    private readonly double[] _delta = new double[channels.Count];
    private readonly int[] _loadStamp = new int[channels.Count];
    private readonly double[] _newRate = new double[channels.Count];
    private readonly int[] _rateStamp = new int[channels.Count];
    private readonly List<int> _moved = [];
    private readonly List<int> _changed = [];
    private readonly int[] _leavingStamp = new int[channels.Count];
    private int _round;

    /// <summary>The groups whose share the plan changes, the first being the one it started from.</summary>
    public IReadOnlyList<int> Changed => _changed;

    /// <summary>The planned share of a group in <see cref="Changed"/>, bytes per ns.</summary>
    public double NewRate(int g) => _newRate[g];

    /// <summary>Starts a new plan.</summary>
    public void Begin()
    {
        _round++;
        _moved.Clear();
        _changed.Clear();
    }

    /// <summary>Channel <paramref name="c"/>'s load moves by <paramref name="delta"/> bytes per ns.</summary>
    public void AddLoad(int c, double delta)
    {
        if (_loadStamp[c] != _round)
        {
            _loadStamp[c] = _round;
            _delta[c] = 0;
            _moved.Add(c);
        }
        _delta[c] += delta;
    }

    /// <summary>
    /// Group <paramref name="g"/>'s share of channel <paramref name="g"/>: its capacity less what the flows of other
    /// groups on it take, spread over <paramref name="members"/>; NaN unless each member crosses it once. (Every flow
    /// on a clean channel has a group.)
    /// </summary>
    public double FairShare(int g, int members)
    {
        var others = 0.0;
        foreach (ref readonly var x in groups.GroupsCrossing(g))
        {
            if (x.Other != g)
                others += x.Count * groups.Rate[x.Other];
            else if (x.Count != groups.Members[g])
                return double.NaN;
        }
        return (channels.Capacity[g] - others) / members;
    }

    /// <summary>True when no flow on channel <paramref name="c"/> outside its group moves faster than <paramref name="rate"/>.</summary>
    public bool Tops(int c, double rate)
    {
        foreach (ref readonly var x in groups.GroupsCrossing(c))
        {
            if (x.Other != c && RateOf(x.Other) > rate * (1 + Tolerance))
                return false;
        }
        return true;
    }

    /// <summary>
    /// Group <paramref name="g"/>'s members move from its current share to <paramref name="newRate"/>, all but the
    /// crossings of <paramref name="leaving"/>'s channels (a member that leaves); plans what follows. False when it
    /// is not local.
    /// </summary>
    public bool Propagate(int g, double newRate, int[]? leaving)
    {
        SetRate(g, newRate);
        foreach (var c in leaving ?? [])
            _leavingStamp[c] = _round;
        // g's own members cross many channels (a busy memory NIC's ~50 GPU links): each is checked on the spot, as if
        // g's change were all that moves its load; LoadsFit adds g's change to the few channels that more moves load.
        var change = newRate - groups.Rate[g];
        // Slowing down only frees capacity: with no bottleneck among the channels g's members cross and none of them
        // waiting for the re-fill, nothing gives way and every load fits, so there is nothing to walk.
        var walk = change > 0 || groups.Blocked[g] != 0 || dirty.Any;
        foreach (ref readonly var crossing in walk ? groups.ChannelsCrossedBy(g) : default)
        {
            var c = crossing.Other;
            var count = Staying(c, crossing.Count);
            if (c == g || count == 0)
                continue;
            if (groups.Members[c] > 0)
            {
                if (!GivesWay(c, change * count))
                    return false;
            }
            else if (dirty.Contains(c) || !Fits(c, change * count))
            {
                return false;
            }
        }
        for (var i = 1; i < _changed.Count; i++)
        {
            var x = _changed[i];
            var followerChange = _newRate[x] - groups.Rate[x];
            foreach (ref readonly var crossing in groups.ChannelsCrossedBy(x))
            {
                var c = crossing.Other;
                if (c == x)
                    continue;
                if (groups.Members[c] == 0)
                    AddLoad(c, followerChange * crossing.Count);
                else if (!GivesWay(c, followerChange * crossing.Count))
                    return false;
            }
        }
        return true;
    }

    // The members of the group the change started from that cross c, less the one leaving.
    private int Staying(int c, int count) => _leavingStamp[c] == _round ? count - 1 : count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Fits(int c, double delta) => delta <= 0 || groups.Load(c) + delta <= channels.Capacity[c] * (1 - Tolerance);

    // Group b's channel takes loadChange from the flows of one changed group: b's members share what is left.
    private bool GivesWay(int b, double loadChange)
    {
        var members = groups.Members[b];
        if (_rateStamp[b] == _round || dirty.Contains(b) || groups.CrossingsBy(b, b) != members)
            return false;
        var rate = groups.Rate[b] - (loadChange / members);
        if (rate <= channels.Capacity[b] * Tolerance)
            return false;
        SetRate(b, rate);
        return Tops(b, rate);
    }

    private void SetRate(int g, double rate)
    {
        _rateStamp[g] = _round;
        _newRate[g] = rate;
        _changed.Add(g);
    }

    private double RateOf(int g) => _rateStamp[g] == _round ? _newRate[g] : groups.Rate[g];

    /// <summary>True when every channel whose load moves (besides those Propagate checked) is clean and keeps slack.</summary>
    public bool LoadsFit()
    {
        var g = _changed[0];
        var change = _newRate[g] - groups.Rate[g];
        foreach (var c in _moved)
        {
            if (dirty.Contains(c) || !Fits(c, _delta[c] + (change * Staying(c, groups.CrossingsBy(c, g)))))
                return false;
        }
        return true;
    }
}
