namespace Fabric.Sim.Network.MaxMin;

/// <summary>
/// The joins and leaves decided and applied without a re-fill: the changed flow's group and the groups that give way
/// to it (<see cref="ShareCascade"/>) take new shares. Each check is a sufficient condition for the result to be
/// exactly the max-min allocation; when one fails, or a channel it touches waits for the re-fill already
/// (<see cref="DirtyChannels"/>), the change goes to <see cref="MaxMinFill"/>. Exact mode only.
/// </summary>
public sealed partial class FlowNetwork
{
    // A new flow whose only bottleneck-to-be is one channel b: it joins b's group at b's new share (b's capacity less
    // the other groups' flows on it, over one member more), provided no flow on b moves faster, its other channels keep
    // slack at that rate, and what b's members slowing down frees is taken up locally (ShareCascade). A flow whose path
    // has no bottleneck yet takes the room left on its narrowest channel, where it becomes the bottleneck. Either way
    // that is the max-min allocation, exactly.
    private bool TryJoinLocally(int id)
    {
        var channels = _flows[id].Channels;
        if (!AllDistinct(channels) || _dirty.ContainsAny(channels))
            return false;
        var best = -1;
        foreach (var c in channels)
        {
            if (_groups.Members[c] == 0)
                continue;
            if (best >= 0)
                return false;
            best = c;
        }
        _cascade.Begin();
        double share;
        if (best >= 0)
        {
            share = _cascade.FairShare(best, _groups.Members[best] + 1);
            if (!(share > 0) || !_cascade.Tops(best, share) || !_cascade.Propagate(best, share, null))
                return false;
        }
        else
        {
            share = double.MaxValue;
            foreach (var c in channels)
            {
                var room = _channels.Capacity[c] - _groups.Load(c);
                if (room < share)
                {
                    best = c;
                    share = room;
                }
            }
            if (!(share > _channels.Capacity[best] * 1e-9) || !_cascade.Tops(best, share) || !_cascade.Propagate(best, share, null))
                return false;
        }
        foreach (var c in channels)
        {
            if (c != best)
                _cascade.AddLoad(c, share);
        }
        if (!_cascade.LoadsFit())
            return false;
        var now = _sim.Now;
        _groups.Advance(best, now);
        _groups.Join(best, id, _flows, _groups.Served[best] + _flows[id].Remaining);
        ApplyShares(now);
        return true;
    }

    // A leaving flow of group g: the others speed up to g's new share (its capacity less the other groups' flows on
    // it, over one member fewer), provided none of the leaver's other channels is anyone's bottleneck, every channel
    // the members cross keeps slack, and the flows bottlenecked where they cross can give way locally (ShareCascade).
    // Plans the change; Complete applies it.
    private bool LeavesLocally(int id)
    {
        var g = _flows[id].Group;
        var channels = _flows[id].Channels;
        if (!AllDistinct(channels) || _dirty.ContainsAny(channels))
            return false;
        foreach (var c in channels)
        {
            if (c != g && _groups.Members[c] > 0)
                return false;
        }
        _cascade.Begin();
        var n = _groups.Members[g];
        if (n == 1)
            return true;
        var share = _cascade.FairShare(g, n - 1);
        if (!(share > 0))
            return false;
        foreach (var c in channels)
        {
            if (c != g)
                _cascade.AddLoad(c, -_groups.Rate[g]);
        }
        return _cascade.Propagate(g, share, channels) && _cascade.LoadsFit();
    }

    // Every group the planned change reaches takes its new share from now on (the first is the one it started from).
    private void ApplyShares(long now)
    {
        var changed = _cascade.Changed;
        for (var i = 0; i < changed.Count; i++)
        {
            var g = changed[i];
            _groups.Advance(g, now);
            _groups.SetRate(g, _cascade.NewRate(g));
            ScheduleDue(g, now);
            if (i > 0)
                FlowsReallocated += _groups.Members[g];
        }
        if (changed.Count > 1)
            CascadedChanges++;
        Reallocations++;
        FlowsReallocated++;
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
