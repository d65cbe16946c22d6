namespace Fabric.Sim.Core;

/// <summary>
/// The joins and leaves that change only one bottleneck group's share, decided and applied without a re-fill. Each
/// check is a sufficient condition for the result to be exactly the max-min allocation; when one fails, the change
/// goes to <see cref="MaxMinFill"/>.
/// </summary>
public sealed partial class FlowNetwork
{
    // The local cases skip the fill (exact mode only). They must not touch a channel whose change still waits for
    // the fill: the fill re-fills everything on those, and holds everything else as a valid max-min state.
    private bool AnyDirty(int[] channels)
    {
        if (_dirty.Count == 0)
            return false;
        foreach (var c in channels)
        {
            if (_isDirty[c])
                return true;
        }
        return false;
    }

    // A new flow whose only bottleneck-to-be is one channel b where every flow is b's group (or b carries only it):
    // it joins b's group at b's new equal share, provided its other channels keep slack at that rate, and b's members,
    // slowed down, free capacity only where no flow is bottlenecked or where the flows bottlenecked there can take it
    // up alone (ShareCascade). That is the max-min allocation, exactly.
    private bool TryJoinLocally(int id)
    {
        var channels = _flows[id].Channels;
        if (!AllDistinct(channels) || AnyDirty(channels))
            return false;
        var best = -1;
        var bestShare = double.MaxValue;
        foreach (var c in channels)
        {
            var n = _groups.Members[c];
            if (n == 0)
                continue;
            if (best >= 0 || !_groups.IsPure(c) || _groups.CrossingsBy(c, c) != n || _channels.Flows[c].Count != n + 1)
                return false;
            best = c;
            bestShare = _channels.Capacity[c] / (n + 1);
        }
        _cascade.Begin();
        if (best < 0)
        {
            // No flow is bottlenecked on its path: alone on the channel with the least room left, it takes that room.
            foreach (var c in channels)
            {
                var room = _channels.Capacity[c] - _groups.Load(c);
                if (room < bestShare)
                {
                    best = c;
                    bestShare = room;
                }
            }
            if (_channels.Flows[best].Count != 1)
                return false;
        }
        else if (!_cascade.FollowShare(best, bestShare, default, _isDirty))
        {
            return false;
        }
        foreach (var c in channels)
        {
            if (c != best)
                _cascade.AddLoad(c, bestShare);
        }
        if (!_cascade.LoadsFit(_isDirty))
            return false;
        var now = _sim.Now;
        _groups.Advance(best, now);
        _groups.Join(best, id, _flows, _groups.Served[best] + _flows[id].Remaining);
        _groups.Rate[best] = bestShare;
        _groups.ScheduleDue(best, _flows, now, _sim, this, GroupDue);
        ApplyFollowers(now);
        Reallocations++;
        FlowsReallocated++;
        return true;
    }

    // A leaving flow of a group g where every flow is g's: the others speed up to g's new equal share, provided none
    // of the leaver's other channels is anyone's bottleneck, every channel the members cross keeps slack, and the
    // flows bottlenecked where they cross can give way alone (ShareCascade). Plans the change; Complete applies it.
    private bool LeavesLocally(int id)
    {
        var g = _flows[id].Group;
        var channels = _flows[id].Channels;
        if (!AllDistinct(channels) || !_groups.IsPure(g) || AnyDirty(channels))
            return false;
        foreach (var c in channels)
        {
            if (c != g && _groups.Members[c] > 0)
                return false;
        }
        var n = _groups.Members[g];
        if (_groups.CrossingsBy(g, g) != n || _channels.Flows[g].Count != n)
            return false;
        _cascade.Begin();
        if (n == 1)
            return true;
        foreach (var c in channels)
        {
            if (c != g)
                _cascade.AddLoad(c, -_groups.Rate[g]);
        }
        return _cascade.FollowShare(g, _channels.Capacity[g] / (n - 1), channels, _isDirty) && _cascade.LoadsFit(_isDirty);
    }

    // The groups that give way to a local change take their new shares from now on.
    private void ApplyFollowers(long now)
    {
        foreach (var (g, rate) in _cascade.Followers)
        {
            _groups.Advance(g, now);
            _groups.Rate[g] = rate;
            _groups.ScheduleDue(g, _flows, now, _sim, this, GroupDue);
        }
        FlowsReallocated += _cascade.FollowingFlows;
        if (_cascade.Followers.Count > 0)
            CascadedChanges++;
    }

    private static bool AllDistinct(int[] channels)
    {
        for (var i = 1; i < channels.Length; i++)
        {
            for (var j = 0; j < i; j++)
            {
                if (channels[i] == channels[j])
                    return false;
            }
        }
        return true;
    }
}
