namespace Fabric.Sim.Core;

/// <summary>
/// Plans a local change of one bottleneck group's share and what follows from it, without a re-fill. When group g's
/// members speed up or slow down, every channel they cross changes load by the difference. Where such a channel b is
/// itself the bottleneck of other flows (group b), b's capacity is re-shared among b's members: they move by the
/// opposite amount, spread over them. That is still exactly max-min when b's members cross no other bottleneck (so
/// the change stops there), b's new share stays at least every other rate on b, and every other channel whose load
/// moves keeps slack. Typical case: a memory NIC's flows speed up when one leaves, and on the GPU NIC links they
/// cross, the flows bottlenecked there (reading from lightly loaded NICs) give way.
/// </summary>
internal sealed class ShareCascade(ChannelState channels, BottleneckGroups groups)
{
    private const double Tolerance = 1e-9;

    private readonly double[] _delta = new double[channels.Count];
    private readonly int[] _stamp = new int[channels.Count];
    private readonly List<int> _moved = [];
    private readonly List<(int Group, double Rate)> _followers = [];
    private int _round;

    /// <summary>The groups that follow the planned change, with their new shares.</summary>
    public IReadOnlyList<(int Group, double Rate)> Followers => _followers;

    /// <summary>Members of the groups that follow.</summary>
    public int FollowingFlows { get; private set; }

    /// <summary>Starts a new plan.</summary>
    public void Begin()
    {
        _round++;
        _moved.Clear();
        _followers.Clear();
        FollowingFlows = 0;
    }

    /// <summary>Channel <paramref name="c"/>'s load moves by <paramref name="delta"/> bytes per ns (no one's bottleneck).</summary>
    public void AddLoad(int c, double delta)
    {
        if (_stamp[c] != _round)
        {
            _stamp[c] = _round;
            _delta[c] = 0;
            _moved.Add(c);
        }
        _delta[c] += delta;
    }

    /// <summary>
    /// Group <paramref name="g"/>'s members move from its current share to <paramref name="newRate"/>, all but the
    /// crossings of <paramref name="leaving"/>'s channels (a member that leaves). False when what follows is not local.
    /// </summary>
    public bool FollowShare(int g, double newRate, ReadOnlySpan<int> leaving, bool[] isDirty)
    {
        var change = newRate - groups.Rate[g];
        foreach (ref readonly var crossing in groups.ChannelsCrossedBy(g))
        {
            var c = crossing.Other;
            var staying = crossing.Count - (leaving.IndexOf(c) >= 0 ? 1 : 0);
            if (c == g || staying == 0)
                continue;
            if (groups.Members[c] == 0)
                AddLoad(c, change * staying);
            else if (!Follows(c, g, newRate, change * staying, isDirty))
                return false;
        }
        return true;
    }

    // Group b gives way to g's change of load on b: its members share what is left of b's capacity.
    private bool Follows(int b, int g, double newRateOfG, double loadChange, bool[] isDirty)
    {
        var members = groups.Members[b];
        if (isDirty[b] || groups.CrossingsBy(b, b) != members)
            return false;
        var rate = groups.Rate[b] - (loadChange / members);
        if (rate <= channels.Capacity[b] * Tolerance)
            return false;
        // b stays the bottleneck of its members only while no flow on b moves faster than they do.
        foreach (ref readonly var x in groups.GroupsCrossing(b))
        {
            var other = x.Other == g ? newRateOfG : groups.Rate[x.Other];
            if (x.Other != b && other > rate * (1 + Tolerance))
                return false;
        }
        var change = rate - groups.Rate[b];
        foreach (ref readonly var crossing in groups.ChannelsCrossedBy(b))
        {
            if (crossing.Other != b)
                AddLoad(crossing.Other, change * crossing.Count);
        }
        _followers.Add((b, rate));
        FollowingFlows += members;
        return true;
    }

    /// <summary>True when every channel whose load moves is clean, no one's bottleneck, and keeps slack.</summary>
    public bool LoadsFit(bool[] isDirty)
    {
        foreach (var c in _moved)
        {
            if (isDirty[c] || groups.Members[c] > 0)
                return false;
            if (_delta[c] > 0 && groups.Load(c) + _delta[c] > channels.Capacity[c] * (1 - Tolerance))
                return false;
        }
        return true;
    }
}
