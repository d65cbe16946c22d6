using System.Globalization;
using System.Xml.Linq;

namespace Fabric.Sim.Topology.Hwloc;

/// <summary>One pass over an hwloc Machine: the nodes and links it yields, and the summary of what was found or skipped.</summary>
internal sealed class HwlocWalk
{
    private const double UnknownPcieGBps = 31.5;
    private static readonly string[] ComputeSubtypes = ["CUDA", "NVML", "OpenCL", "RSMI", "LevelZero"];

    private readonly int _major;
    private readonly XElement _machine;
    private readonly Dictionary<XElement, string> _cpuOf = [];
    private readonly Dictionary<ulong, string> _nodeByGp = [];
    private readonly Dictionary<ulong, XElement> _objectByGp = [];
    private readonly Dictionary<string, int> _counters = [];
    private readonly bool _hasCxlDevices;
    private readonly Dictionary<ulong, string> _unlinkedNvSwitches = [];
    private int _unknownSpeedLinks;

    public HwlocWalk(int major, XElement machine)
    {
        _major = major;
        _machine = machine;
        foreach (var o in machine.DescendantsAndSelf("object"))
            if (HwlocFormat.GpIndex(o) is { } gp)
                _objectByGp[gp] = o;
        _hasCxlDevices = machine.Descendants("object").Any(IsCxlMemOsDev);
        Summary.Format = $"hwloc {major}.x XML";
    }

    public List<NodeDocument> Nodes { get; } = [];
    public List<LinkDocument> Links { get; } = [];
    public HwlocSummary Summary { get; } = new();

    public void Run()
    {
        AddCpus();
        Walk(_machine, attach: null, cap: 0);
    }

    public void Finish(string name)
    {
        foreach (var vd in _unlinkedNvSwitches.Values)
            Summary.Skipped.Add($"NVSwitch ({vd}) that no NVLink bandwidth matrix names (not modelled)");
        if (_unknownSpeedLinks > 0)
            Summary.Assumed.Add($"{_unknownSpeedLinks} PCIe links without pci_link_speed: x16 Gen4 (31.5 GB/s) assumed");
        if (Summary.GpuCount == 0)
            Summary.Warnings.Add($"'{name}' yields no GPU: the topology can run engines only on its CPUs. Import the XML of a GPU machine (with its PCI devices: `lstopo --of xml`, not --no-io), or add gpu nodes by hand.");
        if (Summary.PoolBytes == 0)
            Summary.Warnings.Add($"'{name}' yields no pool memory (no NUMA node, CXL memory device or DAX device with a capacity); add a dram or cxl_type3 node by hand.");
    }

    /// <summary>The node an hwloc object (by gp_index) became; an NVSwitch met for the first time becomes an nvswitch node.</summary>
    public string? NodeForGpIndex(ulong gp)
    {
        if (_nodeByGp.TryGetValue(gp, out var node))
            return node;
        if (!_objectByGp.TryGetValue(gp, out var obj) || HwlocFormat.Type(obj) != "PCIDev")
            return null;
        var id = PciId.Parse(obj.Attribute("pci_type")?.Value);
        if (id is not { Vendor: PciCatalog.Nvidia, BaseClass: 0x06 })
            return null;
        _unlinkedNvSwitches.Remove(gp);
        var sw = Next("nvswitch");
        AddNode(new NodeDocument { Name = sw, Type = "nvswitch", Source = $"NVIDIA NVSwitch {id.Value.VendorDevice} at {HwlocFormat.BusId(obj)}" });
        _nodeByGp[gp] = sw;
        Summary.Switches.Add($"NVSwitch ({id.Value.VendorDevice})");
        return sw;
    }

    public void Link(string from, string to, string kind, string bandwidth, string latency, string? source = null) =>
        Links.Add(new LinkDocument { From = from, To = to, Kind = kind, Bandwidth = bandwidth, Latency = latency, Source = source });

    private void AddCpus()
    {
        var packages = _machine.Descendants("object").Where(o => HwlocFormat.Type(o) == "Package").ToList();
        if (packages.Count == 0)
            packages = [_machine];
        foreach (var p in packages)
        {
            var cpu = Next("cpu");
            var pus = Math.Max(1, p.Descendants("object").Count(o => HwlocFormat.Type(o) == "PU"));
            var model = HwlocFormat.Info(p, "CPUModel")?.Trim();
            AddNode(new NodeDocument
            {
                Name = cpu,
                Type = "cpu",
                MemoryBandwidth = "307GB/s",
                PeakFlops = string.Create(CultureInfo.InvariantCulture, $"{pus * 80}GFLOP/s"),
                Source = model,
            });
            _cpuOf[p] = cpu;
            Summary.Cpus.Add($"{model ?? "package"} ({pus} PUs)");
        }
        var cpus = _cpuOf.Values.ToList();
        for (var i = 0; i < cpus.Count; i++)
            for (var j = i + 1; j < cpus.Count; j++)
                Link(cpus[i], cpus[j], "socket", "128GB/s", "130ns");
    }

    private void Walk(XElement obj, string? attach, double cap)
    {
        foreach (var child in obj.Elements("object"))
            Visit(child, attach, cap);
    }

    private void Visit(XElement child, string? attach, double cap)
    {
        switch (HwlocFormat.Type(child))
        {
            case "Package":
                Walk(child, _cpuOf[child], 0);
                break;
            case "NUMANode":
                AddNuma(child);
                break;
            case "Bridge":
                AddBridge(child, attach ?? NearestCpu(child), cap);
                break;
            case "PCIDev":
                AddPci(child, attach ?? NearestCpu(child), cap);
                break;
            case "OSDev":
                AddLooseOsDev(child, attach ?? NearestCpu(child));
                break;
            case "PU":
            case "Misc":
                break;
            default:
                Walk(child, attach, cap);
                break;
        }
    }

    // A host bridge is the CPU's root complex and a bridge with one child is a root port or a single-port step:
    // both are transparent (their speed caps the link below). A bridge with two or more bridges below it is a
    // switch's upstream port; its downstream ports fold into the switch node.
    private void AddBridge(XElement bridge, string attach, double cap)
    {
        var own = HwlocFormat.LinkSpeed(bridge);
        var hostBridge = (bridge.Attribute("bridge_type")?.Value ?? "").StartsWith('0');
        var ports = bridge.Elements("object").Where(o => HwlocFormat.Type(o) == "Bridge").ToList();
        if (hostBridge || ports.Count < 2 || !bridge.Descendants("object").Any(IsModelledDevice))
        {
            Walk(bridge, attach, hostBridge ? cap : MinSpeed(cap, own));
            return;
        }
        var sw = Next("pcie");
        var id = PciId.Parse(bridge.Attribute("pci_type")?.Value);
        AddNode(new NodeDocument { Name = sw, Type = "pcie_switch", Source = $"PCIe switch {PciCatalog.SwitchVendor(id)} at {HwlocFormat.BusId(bridge)}, {ports.Count} downstream ports" });
        var uplink = MinSpeed(cap, own);
        PcieLink(attach, sw, uplink, "pcie");
        Summary.Switches.Add($"PCIe switch {PciCatalog.SwitchVendor(id)}, {ports.Count} ports, uplink {Gbps(uplink)}");
        foreach (var child in bridge.Elements("object"))
        {
            if (HwlocFormat.Type(child) == "Bridge")
                Walk(child, sw, HwlocFormat.LinkSpeed(child));
            else
                Visit(child, sw, 0);
        }
    }

    private void AddPci(XElement dev, string attach, double cap)
    {
        var id = PciId.Parse(dev.Attribute("pci_type")?.Value);
        var osdevs = dev.Elements("object").Where(o => HwlocFormat.Type(o) == "OSDev").ToList();
        var kinds = osdevs.Aggregate(OsDeviceKind.None, (k, o) => k | HwlocFormat.Kind(o, _major));
        var speed = MinSpeed(cap, HwlocFormat.LinkSpeed(dev));
        var vd = id?.VendorDevice ?? "unknown id";
        var compute = osdevs.Any(o => ComputeSubtypes.Contains(o.Attribute("subtype")?.Value ?? "", StringComparer.Ordinal)
            || (HwlocFormat.Kind(o, _major) & OsDeviceKind.Coproc) != 0);
        if (id?.BaseClass == 0x03 || compute)
        {
            var displayOnly = id is { } i ? PciCatalog.DisplayOnly(i) : null;
            if (displayOnly is not null && !compute)
                Summary.Skipped.Add($"{displayOnly} ({vd}): display only, not a GPU");
            else
                AddGpu(dev, id, osdevs, attach, speed);
            return;
        }
        if (id?.ClassId == 0x0502 || osdevs.Any(IsCxlMemOsDev))
        {
            AddCxlDevice(dev, id, osdevs, attach, speed);
            return;
        }
        if (id?.BaseClass == 0x02 || (kinds & (OsDeviceKind.Network | OsDeviceKind.OpenFabrics)) != 0)
        {
            AddNic(dev, id, osdevs, kinds, attach, speed);
            return;
        }
        if (id is { Vendor: PciCatalog.Nvidia, BaseClass: 0x06 } && HwlocFormat.GpIndex(dev) is { } nvswitch)
        {
            _unlinkedNvSwitches[nvswitch] = vd;
            return;
        }
        Summary.Skipped.Add(id switch
        {
            { BaseClass: 0x01 } => "storage controller (not modelled)",
            { BaseClass: 0x12 } => $"processing accelerator ({vd}, class 1200): not modelled",
            { } p => string.Create(CultureInfo.InvariantCulture, $"PCI device of class {p.ClassId:x4} (not modelled)"),
            null => "PCI device without pci_type (not modelled)",
        });
    }

    private void AddGpu(XElement dev, PciId? id, List<XElement> osdevs, string attach, double speed)
    {
        var infoModel = osdevs.Select(o => HwlocFormat.Info(o, "GPUModel")).FirstOrDefault(m => m is not null);
        var model = (id is { } i ? PciCatalog.Gpu(i) : null) ?? (infoModel is not null ? PciCatalog.GpuByName(infoModel) : null);
        var known = model is not null;
        model ??= PciCatalog.UnknownGpu;
        var memory = model.Memory;
        var cudaKiB = osdevs.Select(o => HwlocFormat.InfoKiB(o, "CUDAGlobalMemorySize")).FirstOrDefault(b => b > 0);
        if (cudaKiB > 0)
            memory = cudaKiB.ToString(CultureInfo.InvariantCulture);
        var vd = id?.VendorDevice ?? "unknown id";
        var gpu = Next("gpu");
        AddNode(new NodeDocument
        {
            Name = gpu,
            Type = "gpu",
            Memory = memory,
            MemoryBandwidth = model.MemoryBandwidth,
            PeakFlops = model.PeakFlops,
            Source = known
                ? $"{model.Name} ({vd}) at {HwlocFormat.BusId(dev)}: datasheet figures"
                : $"unknown model ({vd}{(infoModel is null ? "" : $", '{infoModel}'")}) at {HwlocFormat.BusId(dev)}: placeholder figures, edit before use",
        });
        Remember(dev, gpu);
        foreach (var o in osdevs)
            Remember(o, gpu);
        PcieLink(attach, gpu, speed, "pcie");
        Summary.GpuCount++;
        Summary.Gpus.Add(known
            ? $"{model.Name} ({vd}), PCIe {Gbps(speed)}"
            : $"unknown model ({vd}{(infoModel is null ? "" : $", '{infoModel}'")}): placeholder {model.PeakFlops}, {model.MemoryBandwidth}, {model.Memory}; edit before use");
    }

    private void AddCxlDevice(XElement dev, PciId? id, List<XElement> osdevs, string attach, double speed)
    {
        var mem = osdevs.FirstOrDefault(IsCxlMemOsDev);
        var ram = mem is null ? 0 : HwlocFormat.InfoKiB(mem, "CXLRAMSize");
        var pmem = mem is null ? 0 : HwlocFormat.InfoKiB(mem, "CXLPMEMSize");
        var capacity = ram > 0 ? ram : pmem;
        var cxl = Next("cxl");
        var what = $"CXL memory device {mem?.Attribute("name")?.Value ?? "(no CXLMem OS device)"} ({id?.VendorDevice ?? "unknown id"}) at {HwlocFormat.BusId(dev)}";
        AddNode(new NodeDocument
        {
            Name = cxl,
            Type = "cxl_type3",
            Memory = capacity > 0 ? capacity.ToString(CultureInfo.InvariantCulture) : null,
            Pool = capacity > 0 ? null : false,
            Source = $"{what}: RAM {HwlocSummary.FormatBytes(ram)}, PMEM {HwlocSummary.FormatBytes(pmem)}",
        });
        Remember(dev, cxl);
        Summary.MemoryNodes++;
        if (speed > 0)
            Link(attach, cxl, "cxl", Bandwidth(speed), "170ns", "pci_link_speed");
        else
            Links.Add(new LinkDocument { From = attach, To = cxl, Kind = "cxl", PcieGen = 5, PcieWidth = 16, Efficiency = 0.85, Latency = "170ns" });
        if (capacity > 0)
        {
            Summary.PoolBytes += capacity;
            Summary.Memory.Add($"cxl_type3 {HwlocSummary.FormatBytes(capacity)} ({(ram > 0 ? "RAM" : "PMEM")} of a CXL memory device{(ram > 0 && pmem > 0 ? $", plus {HwlocSummary.FormatBytes(pmem)} PMEM" : "")})");
        }
        else
        {
            Summary.Skipped.Add($"{what}: no capacity given; kept as a cxl_type3 node outside the pool");
        }
        foreach (var dax in osdevs.Where(o => (o.Attribute("name")?.Value ?? "").StartsWith("dax", StringComparison.Ordinal)))
            Summary.Memory.Add($"device-DAX {dax.Attribute("name")!.Value} on {cxl}: a pool endpoint as shm:///dev/{dax.Attribute("name")!.Value}");
    }

    private void AddNic(XElement dev, PciId? id, List<XElement> osdevs, OsDeviceKind kinds, string attach, double speed)
    {
        var nic = Next("nic");
        var known = id is { } i ? PciCatalog.Nic(i) : null;
        var names = string.Join(",", osdevs.Select(o => o.Attribute("name")?.Value).Where(n => n is not null));
        var rdma = (kinds & OsDeviceKind.OpenFabrics) != 0 || id?.ClassId == 0x0207;
        var port = known?.Speed ?? "port speed unknown";
        AddNode(new NodeDocument { Name = nic, Type = "nic", Source = $"{known?.Name ?? id?.VendorDevice ?? "NIC"} {names}{(rdma ? " (RDMA)" : "")}, {port}" });
        Remember(dev, nic);
        PcieLink(attach, nic, speed, "pcie");
        Summary.Nics.Add($"{known?.Name ?? id?.VendorDevice ?? "NIC"}{(rdma ? " RDMA" : "")}, {port}, PCIe {Gbps(speed)}");
    }

    // OS devices outside any PCI device: DAX regions of soft-reserved or persistent memory, CXL memory devices whose
    // PCI function hwloc did not list, block devices.
    private void AddLooseOsDev(XElement osdev, string attach)
    {
        var name = osdev.Attribute("name")?.Value ?? "?";
        if (IsCxlMemOsDev(osdev))
        {
            AddCxlDevice(osdev, null, [osdev], attach, 0);
            return;
        }
        if ((HwlocFormat.Kind(osdev, _major) & OsDeviceKind.Memory) == 0)
        {
            Summary.Skipped.Add($"{HwlocFormat.Kind(osdev, _major)} OS device outside PCI (not modelled)");
            return;
        }
        var size = HwlocFormat.InfoKiB(osdev, "Size");
        var daxType = HwlocFormat.Info(osdev, "DAXType") ?? "SPM";
        if (_hasCxlDevices)
        {
            Summary.Memory.Add($"device-DAX {name} ({daxType}): the CXL devices' memory, a pool endpoint as shm:///dev/{name}");
            return;
        }
        var nvm = daxType == "NVM";
        var node = Next(nvm ? "pmem" : "dax");
        AddNode(new NodeDocument
        {
            Name = node,
            Type = nvm ? "dram" : "cxl_type3",
            Memory = size > 0 ? size.ToString(CultureInfo.InvariantCulture) : null,
            Pool = size > 0 ? null : false,
            Source = $"device-DAX {name} ({daxType}), a pool endpoint as shm:///dev/{name}",
        });
        Summary.MemoryNodes++;
        if (nvm)
            Link(node, attach, "memory", "40GB/s", "300ns");
        else
            Links.Add(new LinkDocument { From = node, To = attach, Kind = "cxl", PcieGen = 5, PcieWidth = 16, Efficiency = 0.85, Latency = "170ns" });
        Summary.PoolBytes += size;
        Summary.Memory.Add($"{(nvm ? "dram" : "cxl_type3")} {HwlocSummary.FormatBytes(size)} (device-DAX {daxType})");
        if (!nvm)
            Summary.Assumed.Add($"device-DAX {name} of type {daxType} taken as CXL-attached memory");
    }

    private void AddNuma(XElement numa)
    {
        var bytes = long.TryParse(numa.Attribute("local_memory")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var b) ? b : 0;
        var subtype = numa.Attribute("subtype")?.Value ?? "";
        var daxType = HwlocFormat.Info(numa, "DAXType");
        var cpuless = HwlocFormat.CpusetEmpty(numa);
        var osIndex = numa.Attribute("os_index")?.Value ?? "?";
        if (subtype.Contains("GPUMemory", StringComparison.Ordinal))
        {
            Summary.Skipped.Add("NUMA node of GPU memory (counted with its GPU)");
            return;
        }
        var tier = subtype.StartsWith("CXL", StringComparison.Ordinal) || HwlocFormat.Info(numa, "CXLDevice") is not null ? "CXL"
            : subtype == "HBM" ? "HBM"
            : subtype == "NVM" || daxType == "NVM" ? "NVM"
            : subtype == "SPM" || daxType == "SPM" ? "SPM"
            : subtype == "DRAM" || !cpuless ? "DRAM"
            : "CPU-less";
        var label = $"{(subtype.Length > 0 ? subtype : tier)} NUMA node P#{osIndex}";
        if (tier is "CXL" or "SPM" or "CPU-less" && _hasCxlDevices)
        {
            Summary.Skipped.Add($"{(subtype.Length > 0 ? subtype : tier)} NUMA node: the memory of the CXL devices, counted there");
            return;
        }
        var cpu = NearestCpu(numa);
        var cxlLike = tier is "CXL" or "SPM" or "CPU-less";
        var node = Next(cxlLike ? "cxl" : tier == "NVM" ? "pmem" : tier == "HBM" ? "hbm" : "numa");
        AddNode(new NodeDocument
        {
            Name = node,
            Type = cxlLike ? "cxl_type3" : "dram",
            Memory = bytes > 0 ? bytes.ToString(CultureInfo.InvariantCulture) : null,
            Pool = bytes > 0 ? null : false,
            Source = label,
        });
        Summary.MemoryNodes++;
        switch (tier)
        {
            case "HBM":
                Link(node, cpu, "memory", "1TB/s", "110ns");
                break;
            case "NVM":
                Link(node, cpu, "memory", "40GB/s", "300ns");
                break;
            case "DRAM":
                Link(node, cpu, "memory", "307GB/s", "90ns");
                break;
            default:
                Links.Add(new LinkDocument { From = node, To = cpu, Kind = "cxl", PcieGen = 5, PcieWidth = 16, Efficiency = 0.85, Latency = "170ns" });
                break;
        }
        if (tier == "CPU-less")
            Summary.Assumed.Add("CPU-less NUMA node without a subtype taken as CXL memory");
        Summary.PoolBytes += bytes;
        Summary.Memory.Add($"{(cxlLike ? "cxl_type3" : "dram")} {HwlocSummary.FormatBytes(bytes)} ({(subtype.Length > 0 ? subtype : tier)}{(cpuless && tier != "CPU-less" ? ", CPU-less" : "")})");
    }

    // The CPU an object belongs to: its Package, or the first Package of the nearest ancestor that has one.
    private string NearestCpu(XElement e)
    {
        for (var a = e.Parent; a is not null; a = a.Parent)
        {
            if (_cpuOf.TryGetValue(a, out var cpu))
                return cpu;
            var package = a.Descendants("object").FirstOrDefault(o => _cpuOf.ContainsKey(o));
            if (package is not null)
                return _cpuOf[package];
        }
        return _cpuOf.Values.First();
    }

    private bool IsModelledDevice(XElement o)
    {
        if (HwlocFormat.Type(o) != "PCIDev")
            return false;
        var id = PciId.Parse(o.Attribute("pci_type")?.Value);
        return id is { BaseClass: 0x02 or 0x03 } or { ClassId: 0x0502 }
            || o.Elements("object").Any(c => IsCxlMemOsDev(c) || (HwlocFormat.Kind(c, _major) & (OsDeviceKind.Gpu | OsDeviceKind.Coproc | OsDeviceKind.Network | OsDeviceKind.OpenFabrics)) != 0);
    }

    private static bool IsCxlMemOsDev(XElement o) =>
        HwlocFormat.Type(o) == "OSDev" && o.Attribute("subtype")?.Value == "CXLMem";

    private void PcieLink(string from, string to, double gbps, string kind)
    {
        if (gbps <= 0)
        {
            _unknownSpeedLinks++;
            gbps = UnknownPcieGBps;
        }
        Link(from, to, kind, Bandwidth(gbps), "150ns");
    }

    private void Remember(XElement obj, string node)
    {
        if (HwlocFormat.GpIndex(obj) is { } gp)
            _nodeByGp[gp] = node;
    }

    private void AddNode(NodeDocument node) => Nodes.Add(node);

    private string Next(string stem)
    {
        _counters.TryGetValue(stem, out var n);
        _counters[stem] = n + 1;
        return stem + n.ToString(CultureInfo.InvariantCulture);
    }

    private static double MinSpeed(double a, double b) => a <= 0 ? b : b <= 0 ? a : Math.Min(a, b);

    // pci_link_speed as hwloc writes it (GB/s with six decimals), so that the topology keeps its exact figure.
    private static string Bandwidth(double gbps) => string.Create(CultureInfo.InvariantCulture, $"{gbps:0.######}GB/s");

    private static string Gbps(double gbps) =>
        gbps > 0 ? string.Create(CultureInfo.InvariantCulture, $"{gbps:0.##} GB/s") : "speed unknown";
}
