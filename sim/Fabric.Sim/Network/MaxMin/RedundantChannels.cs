namespace Fabric.Sim.Network.MaxMin;

/// <summary>
/// Drops from a known set of routes every channel that can never constrain them: channel c is implied by channel d
/// when every route through c crosses d at least as often and d is no wider. Then c's load never exceeds d's and
/// d's capacity never exceeds c's, so the feasible rates, and with them the max-min fair allocation, are the same
/// without c (a PCIe hop behind a slower NIC carrying the same flows, a DRAM channel behind its only NIC). Of two
/// channels that imply each other the lower id stays.
/// </summary>
public static class RedundantChannels
{
    /// <summary>For each route (by reference) the channels that remain; capacities in any unit, indexed by channel.</summary>
    public static Dictionary<int[], int[]> Prune(IReadOnlyCollection<int[]> routes, IReadOnlyList<double> capacity)
    {
        var through = new Dictionary<int, List<int[]>>();
        foreach (var route in routes)
        {
            foreach (var c in route.Distinct())
            {
                if (!through.TryGetValue(c, out var list))
                    through[c] = list = [];
                list.Add(route);
            }
        }
        var redundant = new HashSet<int>();
        foreach (var (c, list) in through)
        {
            foreach (var d in list[0].Distinct())
            {
                if (d != c && Implies(d, c, list, through[d].Count, capacity))
                {
                    redundant.Add(c);
                    break;
                }
            }
        }
        var pruned = new Dictionary<int[], int[]>(ReferenceEqualityComparer.Instance);
        foreach (var route in routes)
            pruned[route] = [.. route.Where(c => !redundant.Contains(c))];
        return pruned;
    }

    // d implies c: no wider, crossed at least as often by every route through c; ties (same routes, same width) go
    // to the lower id so that one of the two always stays.
    private static bool Implies(int d, int c, List<int[]> throughC, int routesThroughD, IReadOnlyList<double> capacity)
    {
        if (capacity[d] > capacity[c])
            return false;
        foreach (var route in throughC)
        {
            if (Count(route, d) < Count(route, c))
                return false;
        }
        var sameRoutes = routesThroughD == throughC.Count;
        return capacity[d] < capacity[c] || !sameRoutes || d < c;
    }

    private static int Count(int[] route, int channel)
    {
        var n = 0;
        foreach (var x in route)
        {
            if (x == channel)
                n++;
        }
        return n;
    }
}
