namespace Fabric.Sim.Topology;

/// <summary>The kinds of node a topology may hold.</summary>
public enum NodeKind
{
    Gpu,
    Cpu,
    Numa,
    Dram,
    CxlType3,
    CxlSwitch,
    PcieSwitch,
    Nic,
    NetSwitch,
    NvSwitch,
}

/// <summary>One resolved node. Memory in bytes, bandwidth in bytes/s, compute in FLOP/s (0 when not given).</summary>
public sealed record TopologyNode(int Id, string Name, NodeKind Kind, long MemoryBytes, double MemoryBandwidth, double PeakFlops, bool IsPool)
{
    /// <summary>Nodes an engine may run on.</summary>
    public bool CanCompute => Kind is NodeKind.Gpu or NodeKind.Cpu && PeakFlops > 0;
}

/// <summary>One resolved full-duplex link: <see cref="Bandwidth"/> bytes/s in each direction, <see cref="LatencyNs"/> one way.</summary>
public sealed record TopologyLink(int Id, int A, int B, double Bandwidth, long LatencyNs, string Kind, string? Calibration);

/// <summary>
/// A validated topology: nodes, links, and the two directed channels of every link (channel <c>2·link</c> runs A→B,
/// <c>2·link+1</c> runs B→A). Immutable once loaded.
/// </summary>
public sealed class Topology
{
    private readonly Dictionary<string, int> _byName;
    private readonly List<(int Link, int Neighbour)>[] _adjacency;

    public Topology(string name, IReadOnlyList<TopologyNode> nodes, IReadOnlyList<TopologyLink> links, CalibrationDocument? calibration = null)
    {
        Name = name;
        Nodes = nodes;
        Links = links;
        Calibration = calibration;
        _byName = nodes.ToDictionary(n => n.Name, n => n.Id, StringComparer.Ordinal);
        _adjacency = new List<(int, int)>[nodes.Count];
        for (var i = 0; i < nodes.Count; i++)
            _adjacency[i] = [];
        foreach (var l in links)
        {
            _adjacency[l.A].Add((l.Id, l.B));
            _adjacency[l.B].Add((l.Id, l.A));
        }
    }

    public string Name { get; }
    public IReadOnlyList<TopologyNode> Nodes { get; }
    public IReadOnlyList<TopologyLink> Links { get; }
    public CalibrationDocument? Calibration { get; }

    /// <summary>Two directed channels per link.</summary>
    public int ChannelCount => Links.Count * 2;

    public TopologyNode? Find(string name) => _byName.TryGetValue(name, out var id) ? Nodes[id] : null;

    /// <summary>The node named <paramref name="name"/>, or a <see cref="TopologyException"/> naming it.</summary>
    public TopologyNode Get(string name) =>
        Find(name) ?? throw new TopologyException($"Topology '{Name}' has no node named '{name}'.");

    /// <summary>Links at <paramref name="node"/> with the node at their other end.</summary>
    public IReadOnlyList<(int Link, int Neighbour)> Neighbours(int node) => _adjacency[node];

    /// <summary>The directed channel that carries data over <paramref name="link"/> away from <paramref name="fromNode"/>.</summary>
    public int Channel(int link, int fromNode) => Links[link].A == fromNode ? 2 * link : 2 * link + 1;

    /// <summary>"a → b" for channel reports.</summary>
    public string DescribeChannel(int channel)
    {
        var l = Links[channel / 2];
        var (from, to) = channel % 2 == 0 ? (l.A, l.B) : (l.B, l.A);
        return $"{Nodes[from].Name} → {Nodes[to].Name}";
    }
}
