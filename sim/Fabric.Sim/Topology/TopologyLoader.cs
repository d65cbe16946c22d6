using System.Globalization;
using System.Text.RegularExpressions;
using Fabric.Common;
using YamlDotNet.Core;

namespace Fabric.Sim.Topology;

/// <summary>
/// Reads a topology file: instantiates templates, expands <c>count</c> patterns, resolves quantities and calibrated
/// links, and validates. Every problem found is one sentence; all of them are reported together.
/// </summary>
public static partial class TopologyLoader
{
    private static readonly string[] KindNames =
        ["gpu", "cpu", "numa", "dram", "cxl_type3", "cxl_switch", "pcie_switch", "nic", "net_switch", "nvswitch"];

    /// <summary>Loads and validates <paramref name="path"/>.</summary>
    public static Topology LoadFile(string path)
    {
        if (!File.Exists(path))
            throw new TopologyException($"The topology file '{path}' does not exist.");
        return Load(File.ReadAllText(path), Path.GetFileName(path));
    }

    /// <summary>Loads and validates YAML text; <paramref name="origin"/> names it in messages.</summary>
    public static Topology Load(string yaml, string origin = "topology") => Resolve(Parse(yaml, origin), origin);

    /// <summary>Parses YAML into the document shape without resolving it.</summary>
    public static TopologyDocument Parse(string yaml, string origin)
    {
        try
        {
            return Yaml.Deserializer.Deserialize<TopologyDocument>(yaml) ?? new TopologyDocument();
        }
        catch (YamlException e)
        {
            throw new TopologyException(Yaml.Problem(e, origin));
        }
    }

    /// <summary>The most a <c>count</c> may be.</summary>
    public const int MaxCount = 1_000_000;

    /// <summary>The most nodes and links a topology may have (a 100,000-GPU cluster has well under a million).</summary>
    public const int MaxElements = 4_000_000;

    /// <summary>How deep templates may instantiate templates.</summary>
    public const int MaxNesting = 8;

    /// <summary>Resolves and validates a parsed document.</summary>
    public static Topology Resolve(TopologyDocument doc, string origin = "topology")
    {
        var problems = new List<string>();
        var nodes = new List<TopologyNode>();
        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        var pendingLinks = new List<(LinkDocument Doc, string From, string To, string Where)>();
        var templates = doc.Templates ?? [];

        // A count of 1..MaxCount; otherwise a problem, and nothing made.
        int CountOf(int? count, string what, string where)
        {
            var n = count ?? 1;
            if (n is < 1 or > MaxCount)
            {
                problems.Add($"{what} in {where} has count {n}; give 1 to {MaxCount:N0}.");
                return 0;
            }
            return n;
        }

        // The nodes and links the document would expand to, counted before any is made (at most MaxElements + 1).
        long SizeOf(List<NodeDocument>? nodeDocs, List<LinkDocument>? linkDocs, List<InstanceDocument>? instances, int depth)
        {
            long size = (nodeDocs ?? []).Sum(n => (long)Math.Max(n.Count ?? 1, 0)) + (linkDocs ?? []).Sum(l => (long)Math.Max(l.Count ?? 1, 0));
            foreach (var inst in instances ?? [])
            {
                if (depth <= MaxNesting && inst.Template is not null && templates.TryGetValue(inst.Template, out var t))
                    size += Math.Max(inst.Count ?? 1, 0) * SizeOf(t.Nodes, t.Links, t.Instances, depth + 1);
                size = Math.Min(size, MaxElements + 1L);
            }
            return size;
        }

        void AddGroup(List<NodeDocument>? nodeDocs, List<LinkDocument>? linkDocs, List<InstanceDocument>? instances, string prefix, int depth, string where)
        {
            foreach (var n in nodeDocs ?? [])
            {
                var count = CountOf(n.Count, $"Node '{n.Name}'", where);
                for (var i = 0; i < count; i++)
                {
                    var name = prefix + Expand(n.Name, i);
                    if (string.IsNullOrWhiteSpace(n.Name))
                    {
                        problems.Add($"A node in {where} has no name.");
                        break;
                    }
                    if (byName.ContainsKey(name))
                    {
                        problems.Add($"The node name '{name}' is used twice.");
                        continue;
                    }
                    var node = ResolveNode(n, name, nodes.Count, problems);
                    if (node is null)
                        break;
                    byName[name] = node.Id;
                    nodes.Add(node);
                }
            }
            foreach (var inst in instances ?? [])
            {
                if (depth > MaxNesting)
                {
                    problems.Add($"Templates in {origin} nest more than {MaxNesting} deep; is a template instantiating itself?");
                    return;
                }
                if (inst.Template is null || !templates.TryGetValue(inst.Template, out var t))
                {
                    problems.Add($"An instance in {where} names the unknown template '{inst.Template}'.");
                    continue;
                }
                var count = CountOf(inst.Count, $"The instance of '{inst.Template}'", where);
                for (var i = 0; i < count; i++)
                {
                    var instName = Expand(inst.Name ?? (count == 1 ? inst.Template : inst.Template + "{i}"), i);
                    AddGroup(t.Nodes, t.Links, t.Instances, prefix + instName + ".", depth + 1, $"template '{inst.Template}'");
                }
            }
            var linkIndex = 0;
            foreach (var l in linkDocs ?? [])
            {
                linkIndex++;
                if (string.IsNullOrWhiteSpace(l.From) || string.IsNullOrWhiteSpace(l.To))
                {
                    problems.Add($"Link {linkIndex} in {where} ({l.From ?? "?"} → {l.To ?? "?"}) goes nowhere: it needs both 'from' and 'to'.");
                    continue;
                }
                var count = CountOf(l.Count, $"Link {linkIndex} ({l.From} → {l.To})", where);
                for (var i = 0; i < count; i++)
                    pendingLinks.Add((l, prefix + Expand(l.From, i), prefix + Expand(l.To, i), where));
            }
        }

        if (SizeOf(doc.Nodes, doc.Links, doc.Instances, 0) > MaxElements)
            throw new TopologyException($"{origin} would have more than {MaxElements:N0} nodes and links; check the counts of its templates and instances.");
        AddGroup(doc.Nodes, doc.Links, doc.Instances, "", 0, origin);

        var calibrated = ResolveCalibration(doc.Calibration, problems);
        var links = new List<TopologyLink>();
        foreach (var (l, from, to, where) in pendingLinks)
        {
            var missing = !byName.TryGetValue(from, out var a) ? from : !byName.TryGetValue(to, out var b) ? to : null;
            if (missing is not null)
            {
                problems.Add($"The link {from} → {to} in {where} names the unknown node '{missing}'.");
                continue;
            }
            b = byName[to];
            if (a == b)
            {
                problems.Add($"The link {from} → {to} in {where} connects a node to itself.");
                continue;
            }
            var link = ResolveLink(l, links.Count, a, b, from, to, calibrated, problems);
            if (link is not null)
                links.Add(link);
        }

        if (nodes.Count == 0)
            problems.Add($"{origin} declares no nodes.");

        var topology = new Topology(doc.Name ?? origin, nodes, links, doc.Calibration);
        if (problems.Count == 0)
            CheckPoolReachability(topology, problems);
        if (problems.Count > 0)
            throw new TopologyException(problems.Count == 1 ? problems[0] : $"{origin} has {problems.Count} problems: " + string.Join(" ", problems));
        return topology;
    }

    private static TopologyNode? ResolveNode(NodeDocument n, string name, int id, List<string> problems)
    {
        var kindIndex = Array.IndexOf(KindNames, n.Type);
        if (kindIndex < 0)
        {
            problems.Add($"Node '{name}' has the unknown type '{n.Type}'; expected one of {string.Join(", ", KindNames)}.");
            return null;
        }
        var kind = (NodeKind)kindIndex;
        long memory = 0;
        double bandwidth = 0, flops = 0;
        if (n.Memory is not null && !ByteSize.TryParse(n.Memory, out memory))
            problems.Add($"Node '{name}' has the memory size '{n.Memory}', which is not a size such as 80GiB.");
        if (n.MemoryBandwidth is not null && !Units.TryParseBandwidth(n.MemoryBandwidth, out bandwidth))
            problems.Add($"Node '{name}' has the memory bandwidth '{n.MemoryBandwidth}', which is not a bandwidth such as 3.35TB/s.");
        if (n.PeakFlops is not null && !Units.TryParseFlops(n.PeakFlops, out flops))
            problems.Add($"Node '{name}' has the peak compute '{n.PeakFlops}', which is not a rate such as 989TFLOP/s.");
        if (kind == NodeKind.Gpu && (n.PeakFlops is null || n.MemoryBandwidth is null))
            problems.Add($"GPU '{name}' needs peak_flops and memory_bandwidth for the roofline model.");
        var isMemory = kind is NodeKind.Dram or NodeKind.CxlType3;
        if (n.Pool == true && !isMemory)
            problems.Add($"Node '{name}' is marked pool but is a {n.Type}; only dram and cxl_type3 nodes hold the pool.");
        return new TopologyNode(id, name, kind, memory, bandwidth, flops, isMemory && (n.Pool ?? true));
    }

    private static Dictionary<string, (double Bandwidth, long Latency)> ResolveCalibration(CalibrationDocument? cal, List<string> problems)
    {
        var result = new Dictionary<string, (double, long)>(StringComparer.Ordinal);
        foreach (var (name, entry) in cal?.Links ?? [])
        {
            if (!Units.TryParseBandwidth(entry.Bandwidth, out var bw))
            {
                problems.Add($"Calibrated link '{name}' has no usable bandwidth ('{entry.Bandwidth}').");
                continue;
            }
            Units.TryParseDuration(entry.Latency, out var lat);
            result[name] = (bw, lat);
        }
        return result;
    }

    private static TopologyLink? ResolveLink(LinkDocument l, int id, int a, int b, string from, string to,
        Dictionary<string, (double Bandwidth, long Latency)> calibrated, List<string> problems)
    {
        double bandwidth = 0;
        long latency = 0;
        if (l.Calibrated is not null)
        {
            if (!calibrated.TryGetValue(l.Calibrated, out var c))
            {
                problems.Add($"The link {from} → {to} refers to the calibration entry '{l.Calibrated}', which the calibration block does not have.");
                return null;
            }
            (bandwidth, latency) = c;
        }
        if (l.Bandwidth is not null && !Units.TryParseBandwidth(l.Bandwidth, out bandwidth))
        {
            problems.Add($"The link {from} → {to} has the bandwidth '{l.Bandwidth}', which is not a bandwidth such as 64GB/s or 400Gb/s.");
            return null;
        }
        if (l.Bandwidth is null && l.PcieGen is not null)
        {
            bandwidth = Pcie.BytesPerSecond(l.PcieGen.Value, l.PcieWidth ?? 16);
            if (bandwidth == 0)
            {
                problems.Add($"The link {from} → {to} has PCIe gen {l.PcieGen} x{l.PcieWidth ?? 16}, which is not a PCIe generation (1-6) and width (1-32).");
                return null;
            }
        }
        if (bandwidth <= 0)
        {
            problems.Add($"The link {from} → {to} has no bandwidth: give bandwidth, pcie_gen and pcie_width, or calibrated.");
            return null;
        }
        if (l.Efficiency is { } eff)
        {
            if (eff is <= 0 or > 1)
            {
                problems.Add($"The link {from} → {to} has efficiency {eff.ToString(CultureInfo.InvariantCulture)}, which must be in (0, 1].");
                return null;
            }
            bandwidth *= eff;
        }
        if (l.Latency is not null && !Units.TryParseDuration(l.Latency, out latency))
        {
            problems.Add($"The link {from} → {to} has the latency '{l.Latency}', which is not a duration such as 500ns or 2us.");
            return null;
        }
        return new TopologyLink(id, a, b, bandwidth, latency, l.Kind ?? (l.PcieGen is not null ? "pcie" : "link"), l.Calibrated);
    }

    private static void CheckPoolReachability(Topology topology, List<string> problems)
    {
        var pools = topology.Nodes.Where(n => n.IsPool).Select(n => n.Id).ToList();
        var gpus = topology.Nodes.Where(n => n.Kind == NodeKind.Gpu).ToList();
        if (gpus.Count == 0 && !topology.Nodes.Any(n => n.CanCompute))
        {
            problems.Add($"Topology '{topology.Name}' has no gpu (or cpu with peak_flops) for an engine to run on.");
            return;
        }
        if (pools.Count == 0)
        {
            problems.Add($"Topology '{topology.Name}' has no pool memory: add a dram or cxl_type3 node.");
            return;
        }
        // One flood fill from all pools at once marks every node with a path to some pool.
        var reached = new bool[topology.Nodes.Count];
        var queue = new Queue<int>(pools);
        foreach (var p in pools)
            reached[p] = true;
        while (queue.Count > 0)
        {
            foreach (var (_, next) in topology.Neighbours(queue.Dequeue()))
            {
                if (!reached[next])
                {
                    reached[next] = true;
                    queue.Enqueue(next);
                }
            }
        }
        foreach (var g in gpus.Where(g => !reached[g.Id]))
            problems.Add($"GPU '{g.Name}' has no path to any pool memory.");
    }

    /// <summary>Replaces <c>{i}</c>, <c>{i/2}</c>, <c>{i%4}</c>, <c>{i+1}</c>, <c>{i*8}</c>, <c>{i/2%3}</c> (left to right) with the index.</summary>
    internal static string Expand(string? pattern, int i) =>
        pattern is null ? "" : IndexPattern().Replace(pattern, m =>
        {
            var v = i;
            foreach (Match op in OperationPattern().Matches(m.Groups[1].Value))
            {
                var k = int.Parse(op.Groups[2].Value, CultureInfo.InvariantCulture);
                v = op.Groups[1].Value switch
                {
                    "/" => k == 0 ? 0 : v / k,
                    "%" => k == 0 ? 0 : v % k,
                    "+" => v + k,
                    "-" => v - k,
                    _ => v * k,
                };
            }
            return v.ToString(CultureInfo.InvariantCulture);
        });

    [GeneratedRegex(@"\{i((?:[/%+*-]\d+)*)\}")]
    private static partial Regex IndexPattern();

    [GeneratedRegex(@"([/%+*-])(\d+)")]
    private static partial Regex OperationPattern();
}
