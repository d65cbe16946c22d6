using System.Globalization;
using System.Xml.Linq;

namespace Fabric.Sim.Topology.Hwloc;

/// <summary>What an hwloc OS device is, in hwloc 3.x terms (a device may be several, e.g. a CUDA device is gpu and coproc).</summary>
[Flags]
public enum OsDeviceKind
{
    None = 0,
    Storage = 1 << 0,
    Memory = 1 << 1,
    Gpu = 1 << 2,
    Coproc = 1 << 3,
    Network = 1 << 4,
    OpenFabrics = 1 << 5,
    Dma = 1 << 6,
}

/// <summary>
/// The two XML formats hwloc writes. Both say <c>&lt;topology version="2.0"&gt;</c> or <c>"3.0"</c>; they differ in how an
/// OS device's type is written: 2.x writes an enumeration (0 block, 1 gpu, 2 network, 3 openfabrics, 4 dma, 5 coproc;
/// CXL memory devices and DAX devices are blocks that hwloc 3 reclassifies as memory by subtype <c>CXLMem</c> or name
/// <c>dax*</c>), 3.x a bit mask (1 storage, 2 memory, 4 gpu, 8 coproc, 16 network, 32 openfabrics, 64 dma). This follows
/// hwloc's own reader of both (hwloc/topology-xml.c).
/// </summary>
public static class HwlocFormat
{
    /// <summary>The major version of the file's format (2 or 3), or a <see cref="TopologyException"/> for what cannot be read.</summary>
    public static int MajorVersion(XElement topology, string name)
    {
        var version = topology.Attribute("version")?.Value;
        if (version is null)
            throw new TopologyException($"'{name}' is hwloc 1.x XML, which this importer does not read; export it again with hwloc 2 or 3 (`lstopo --of xml FILE.xml`).");
        var major = version.Split('.')[0];
        return major switch
        {
            "2" => 2,
            "3" => 3,
            _ => throw new TopologyException($"'{name}' is hwloc XML version {version}; this importer reads versions 2.x and 3.x."),
        };
    }

    /// <summary>The kind of an OS device element, decoded for the file's format.</summary>
    public static OsDeviceKind Kind(XElement osdev, int majorVersion)
    {
        if (!ulong.TryParse(osdev.Attribute("osdev_type")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var code))
            return OsDeviceKind.None;
        if (majorVersion >= 3)
            return (OsDeviceKind)(code & 0x7f);
        var name = osdev.Attribute("name")?.Value ?? "";
        var subtype = osdev.Attribute("subtype")?.Value ?? "";
        return code switch
        {
            0 when name.StartsWith("dax", StringComparison.Ordinal) || subtype == "CXLMem" => OsDeviceKind.Memory,
            0 => OsDeviceKind.Storage,
            1 => OsDeviceKind.Gpu,
            2 => OsDeviceKind.Network,
            3 => OsDeviceKind.OpenFabrics,
            4 => OsDeviceKind.Dma,
            5 => OsDeviceKind.Coproc,
            _ => OsDeviceKind.None,
        };
    }

    /// <summary>hwloc's object type of an element ("Package", "PCIDev", ...).</summary>
    public static string Type(XElement e) => e.Attribute("type")?.Value ?? "";

    /// <summary>The value of the <c>&lt;info name=... value=...&gt;</c> child called <paramref name="name"/>.</summary>
    public static string? Info(XElement e, string name) =>
        e.Elements("info").FirstOrDefault(i => i.Attribute("name")?.Value == name)?.Attribute("value")?.Value;

    /// <summary>An info holding a size in KiB (hwloc's unit for Size, CXLRAMSize, CXLPMEMSize), in bytes; 0 when absent.</summary>
    public static long InfoKiB(XElement e, string name) =>
        long.TryParse(Info(e, name), NumberStyles.None, CultureInfo.InvariantCulture, out var kib) ? kib * 1024 : 0;

    /// <summary>The PCI bus id ("0000:17:00.0"); hwloc writes <c>pci_busid</c>, some hand-written files <c>busid</c>.</summary>
    public static string BusId(XElement e) => e.Attribute("pci_busid")?.Value ?? e.Attribute("busid")?.Value ?? "?";

    /// <summary>pci_link_speed in GB/s per direction; 0 when absent or unknown.</summary>
    public static double LinkSpeed(XElement e) =>
        double.TryParse(e.Attribute("pci_link_speed")?.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : 0;

    /// <summary>Whether an object's cpuset is empty (a CPU-less NUMA node).</summary>
    public static bool CpusetEmpty(XElement e)
    {
        var cpuset = e.Attribute("cpuset")?.Value;
        return cpuset is null || cpuset.Replace("0x", "", StringComparison.Ordinal).Trim(',', '0').Length == 0;
    }

    /// <summary>hwloc's global persistent index of an object (gp_index in both formats; 3.x also writes id="objN").</summary>
    public static ulong? GpIndex(XElement e)
    {
        if (ulong.TryParse(e.Attribute("gp_index")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var gp))
            return gp;
        var id = e.Attribute("id")?.Value;
        return id is not null && id.StartsWith("obj", StringComparison.Ordinal) &&
            ulong.TryParse(id.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out gp) ? gp : null;
    }
}
