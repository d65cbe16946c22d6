using System.Globalization;
using System.Xml;
using System.Xml.Linq;

namespace Fabric.Sim.Topology;

/// <summary>
/// Turns the XML of <c>lstopo --of xml</c> (hwloc 2.x) into a topology document: packages become cpu nodes, NUMA nodes
/// with CPUs dram, CPU-less (or CXL-subtyped) NUMA nodes cxl_type3, PCI bridges pcie_switch, PCI devices with a
/// CUDA/NVML/OpenCL osdev gpu, with a network or OpenFabrics osdev nic. Link bandwidth comes from hwloc's
/// <c>pci_link_speed</c> (GB/s); what hwloc cannot know (memory bandwidth, FLOP/s) is filled with documented defaults.
/// </summary>
public static class HwlocImporter
{
    private const string DefaultsNote = "defaults where hwloc has no figure: DDR5 socket 307 GB/s, CXL x16 Gen5 54 GB/s, GPU figures by model name (NVIDIA datasheets), CPU 32 FLOP/cycle x 2.5 GHz per PU";

    /// <summary>Reads <paramref name="path"/>; a file that is not hwloc XML is a <see cref="TopologyException"/>.</summary>
    public static TopologyDocument ImportFile(string path)
    {
        if (!File.Exists(path))
            throw new TopologyException($"The hwloc file '{path}' does not exist.");
        XDocument xml;
        try
        {
            xml = XDocument.Load(path);
        }
        catch (XmlException e)
        {
            throw new TopologyException($"'{path}' is not XML ({e.Message.TrimEnd('.')}); produce it with `lstopo --of xml FILE.xml`.");
        }
        return Import(xml, Path.GetFileNameWithoutExtension(path));
    }

    public static TopologyDocument Import(XDocument xml, string name)
    {
        var root = xml.Root;
        if (root is null || root.Name.LocalName != "topology")
            throw new TopologyException($"'{name}' is not an hwloc topology: its root element is not <topology>; produce it with `lstopo --of xml`.");
        var machine = root.Elements("object").FirstOrDefault(o => Attr(o, "type") == "Machine")
            ?? throw new TopologyException($"'{name}' has no Machine object; is it hwloc 2.x XML?");
        var state = new ImportState();
        Walk(machine, parentNode: null, currentCpu: null, state);
        if (state.Cpus.Count == 0)
            state.AddNode(new NodeDocument { Name = "cpu0", Type = "cpu", PeakFlops = "100GFLOP/s" });
        return new TopologyDocument
        {
            Name = name,
            Description = $"Imported from hwloc XML '{name}' by `fabric sim import-hwloc`.",
            Sources = [$"hwloc topology '{name}' (pci_link_speed for PCIe links)", DefaultsNote],
            Nodes = state.Nodes,
            Links = state.Links,
        };
    }

    private sealed class ImportState
    {
        public List<NodeDocument> Nodes { get; } = [];
        public List<LinkDocument> Links { get; } = [];
        public List<string> Cpus { get; } = [];
        public Dictionary<string, int> Counters { get; } = [];

        public string Next(string stem)
        {
            Counters.TryGetValue(stem, out var n);
            Counters[stem] = n + 1;
            return stem + n.ToString(CultureInfo.InvariantCulture);
        }

        public void AddNode(NodeDocument node)
        {
            Nodes.Add(node);
            if (node.Type == "cpu")
                Cpus.Add(node.Name!);
        }

        public void Link(string from, string to, string kind, string bandwidth, string latency) =>
            Links.Add(new LinkDocument { From = from, To = to, Kind = kind, Bandwidth = bandwidth, Latency = latency });
    }

    private static void Walk(XElement obj, string? parentNode, string? currentCpu, ImportState s)
    {
        foreach (var child in obj.Elements("object"))
        {
            var type = Attr(child, "type");
            switch (type)
            {
                case "Package":
                {
                    var cpu = s.Next("cpu");
                    var pus = child.Descendants("object").Count(o => Attr(o, "type") == "PU");
                    s.AddNode(new NodeDocument
                    {
                        Name = cpu,
                        Type = "cpu",
                        MemoryBandwidth = "307GB/s",
                        PeakFlops = string.Create(CultureInfo.InvariantCulture, $"{Math.Max(1, pus) * 80}GFLOP/s"),
                    });
                    if (parentNode is not null)
                        s.Link(parentNode, cpu, "upi", "128GB/s", "130ns");
                    Walk(child, cpu, cpu, s);
                    break;
                }
                case "NUMANode":
                    AddNuma(child, currentCpu ?? s.Cpus.FirstOrDefault(), s);
                    break;
                case "Bridge":
                {
                    var upstream = parentNode ?? currentCpu ?? s.Cpus.FirstOrDefault();
                    if (!HasInterestingDevice(child))
                        break;
                    var sw = s.Next("pcie");
                    s.AddNode(new NodeDocument { Name = sw, Type = "pcie_switch" });
                    if (upstream is not null)
                        s.Link(upstream, sw, "pcie", LinkSpeed(child), "150ns");
                    Walk(child, sw, currentCpu, s);
                    break;
                }
                case "PCIDev":
                    AddPciDevice(child, parentNode ?? currentCpu ?? s.Cpus.FirstOrDefault(), s);
                    break;
                default:
                    // Groups, caches and cores: look inside for packages, NUMA nodes and I/O.
                    Walk(child, parentNode, currentCpu, s);
                    break;
            }
        }
    }

    private static void AddNuma(XElement numa, string? cpu, ImportState s)
    {
        var bytes = long.TryParse(Attr(numa, "local_memory"), out var b) ? b : 0;
        var subtype = Attr(numa, "subtype") ?? "";
        var cpuset = Attr(numa, "cpuset") ?? "";
        var cpuless = cpuset.Trim('0', 'x', ',').Length == 0;
        if (subtype.Contains("GPU", StringComparison.OrdinalIgnoreCase))
            return;
        var isCxl = subtype.Contains("CXL", StringComparison.OrdinalIgnoreCase) || cpuless;
        var name = s.Next(isCxl ? "cxl" : "numa");
        s.AddNode(new NodeDocument
        {
            Name = name,
            Type = isCxl ? "cxl_type3" : "dram",
            Memory = b > 0 ? b.ToString(CultureInfo.InvariantCulture) : null,
        });
        if (cpu is not null)
        {
            if (isCxl)
                s.Links.Add(new LinkDocument { From = name, To = cpu, Kind = "cxl", PcieGen = 5, PcieWidth = 16, Efficiency = 0.85, Latency = "170ns" });
            else
                s.Link(name, cpu, "memory", "307GB/s", "90ns");
        }
    }

    private static void AddPciDevice(XElement dev, string? upstream, ImportState s)
    {
        var osdevs = dev.Elements("object").Where(o => Attr(o, "type") == "OSDev").ToList();
        bool Has(params string[] kinds) => osdevs.Any(o =>
            kinds.Contains(Attr(o, "subtype") ?? "", StringComparer.OrdinalIgnoreCase) ||
            kinds.Contains(OsdevTypeName(Attr(o, "osdev_type")), StringComparer.OrdinalIgnoreCase));
        string name;
        if (Has("CUDA", "NVML", "OpenCL", "RSMI", "LevelZero", "gpu"))
        {
            name = s.Next("gpu");
            var model = osdevs.SelectMany(o => o.Elements("info")).FirstOrDefault(i => Attr(i, "name") is "GPUModel" or "Backend")?.Attribute("value")?.Value ?? "";
            var memKiB = osdevs.SelectMany(o => o.Elements("info")).FirstOrDefault(i => Attr(i, "name") == "CUDAGlobalMemorySize")?.Attribute("value")?.Value;
            var (flops, hbm, mem) = GpuFigures(model);
            if (long.TryParse(memKiB, out var kib))
                mem = (kib * 1024).ToString(CultureInfo.InvariantCulture);
            s.AddNode(new NodeDocument { Name = name, Type = "gpu", Memory = mem, MemoryBandwidth = hbm, PeakFlops = flops, Source = model.Length > 0 ? model : "unknown GPU model: placeholder figures" });
        }
        else if (Has("Network", "OpenFabrics"))
        {
            name = s.Next("nic");
            s.AddNode(new NodeDocument { Name = name, Type = "nic" });
        }
        else
        {
            return;
        }
        if (upstream is not null)
            s.Link(upstream, name, "pcie", LinkSpeed(dev), "150ns");
    }

    private static (string Flops, string Hbm, string Memory) GpuFigures(string model) =>
        model.Contains("H200", StringComparison.OrdinalIgnoreCase) ? ("989TFLOP/s", "4.8TB/s", "141GB")
        : model.Contains("H100", StringComparison.OrdinalIgnoreCase) ? ("989TFLOP/s", "3.35TB/s", "80GiB")
        : model.Contains("A100", StringComparison.OrdinalIgnoreCase) ? ("312TFLOP/s", "2.0TB/s", "80GiB")
        : model.Contains("L40", StringComparison.OrdinalIgnoreCase) ? ("181TFLOP/s", "0.864TB/s", "48GiB")
        : ("100TFLOP/s", "1TB/s", "16GiB");

    private static bool HasInterestingDevice(XElement bridge) =>
        bridge.Descendants("object").Any(o => Attr(o, "type") == "OSDev" &&
            (OsdevTypeName(Attr(o, "osdev_type")) is "gpu" or "Network" or "OpenFabrics" or "CUDA"
             || Attr(o, "subtype") is "CUDA" or "NVML" or "OpenCL" or "RSMI" or "LevelZero"));

    // hwloc_obj_osdev_type_e: 0 block (storage), 1 gpu, 2 network, 3 openfabrics, 4 dma, 5 coproc.
    private static string OsdevTypeName(string? code) => code switch
    {
        "1" => "gpu",
        "2" => "Network",
        "3" => "OpenFabrics",
        "5" => "coproc",
        _ => "other",
    };

    private static string LinkSpeed(XElement obj)
    {
        // hwloc reports pci_link_speed in GB/s per direction; 0 or absent when unknown (then assume x16 Gen4).
        var speed = double.TryParse(Attr(obj, "pci_link_speed"), NumberStyles.Float, CultureInfo.InvariantCulture, out var gbps) && gbps > 0
            ? gbps
            : obj.Descendants("object").Select(o => double.TryParse(Attr(o, "pci_link_speed"), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 0).DefaultIfEmpty(0).Max();
        if (speed <= 0)
            speed = 31.5;
        return string.Create(CultureInfo.InvariantCulture, $"{speed:0.###}GB/s");
    }

    private static string? Attr(XElement e, string name) => e.Attribute(name)?.Value;
}
