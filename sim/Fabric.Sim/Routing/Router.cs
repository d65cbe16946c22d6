using Fabric.Sim.Topology;

namespace Fabric.Sim.Routing;

/// <summary>
/// Shortest paths by latency, then hop count, then lowest node id (so a run is deterministic), cached per pair.
/// Data never passes through a gpu or a memory node on its way: those are ends, not forwarders.
/// </summary>
public sealed class Router
{
    private readonly Topology.Topology _topology;
    private readonly Dictionary<long, Route?> _cache = [];
    private readonly Dictionary<int, (long[] Dist, int[] Prev, int[] ViaLink)> _trees = [];

    public Router(Topology.Topology topology) => _topology = topology;

    /// <summary>The route from <paramref name="from"/> to <paramref name="to"/>, or null when there is none.</summary>
    public Route? Find(int from, int to)
    {
        var key = ((long)from << 32) | (uint)to;
        if (_cache.TryGetValue(key, out var cached))
            return cached;
        if (!_trees.TryGetValue(from, out var tree))
        {
            tree = ShortestPathTree(from);
            _trees[from] = tree;
        }
        var route = Build(from, to, tree);
        _cache[key] = route;
        return route;
    }

    // One Dijkstra per source gives the routes to every destination (pools are few, engines many).
    private (long[] Dist, int[] Prev, int[] ViaLink) ShortestPathTree(int from)
    {
        var n = _topology.Nodes.Count;
        var dist = new long[n];
        var hops = new int[n];
        var viaLink = new int[n];
        var prev = new int[n];
        Array.Fill(dist, long.MaxValue);
        Array.Fill(prev, -1);
        dist[from] = 0;
        var queue = new PriorityQueue<int, (long, int, int)>();
        queue.Enqueue(from, (0, 0, from));
        var done = new bool[n];
        while (queue.TryDequeue(out var u, out _))
        {
            if (done[u])
                continue;
            done[u] = true;
            if (u != from && !IsForwarder(_topology.Nodes[u].Kind))
                continue;
            foreach (var (link, v) in _topology.Neighbours(u))
            {
                var d = dist[u] + _topology.Links[link].LatencyNs;
                var h = hops[u] + 1;
                if (d < dist[v] || (d == dist[v] && h < hops[v]))
                {
                    dist[v] = d;
                    hops[v] = h;
                    prev[v] = u;
                    viaLink[v] = link;
                    queue.Enqueue(v, (d, h, v));
                }
            }
        }
        return (dist, prev, viaLink);
    }

    private Route? Build(int from, int to, (long[] Dist, int[] Prev, int[] ViaLink) tree)
    {
        var (dist, prev, viaLink) = tree;
        if (dist[to] == long.MaxValue)
            return null;
        var channels = new List<int>();
        var bottleneck = double.MaxValue;
        for (var v = to; v != from; v = prev[v])
        {
            channels.Add(_topology.Channel(viaLink[v], prev[v]));
            bottleneck = Math.Min(bottleneck, _topology.Links[viaLink[v]].Bandwidth);
        }
        channels.Reverse();
        return new Route(from, to, [.. channels], dist[to], from == to ? double.PositiveInfinity : bottleneck);
    }

    private static bool IsForwarder(NodeKind kind) => kind is not (NodeKind.Gpu or NodeKind.Dram or NodeKind.CxlType3);
}
