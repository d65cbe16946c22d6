using System.Xml;
using System.Xml.Linq;

namespace Fabric.Sim.Topology.Hwloc;

/// <summary>A topology document made from hwloc XML, and the summary of what went into it.</summary>
public sealed record HwlocImport(TopologyDocument Document, HwlocSummary Summary);

/// <summary>
/// Turns the XML of <c>lstopo --of xml</c> (hwloc 2.x or 3.x) into a topology document. Packages become cpu nodes;
/// NUMA nodes become dram (DRAM, HBM, NVM) or cxl_type3 (CXL-*, SPM, CPU-less) nodes with their capacity; PCI
/// functions of class 0300/0302 become gpus by vendor and device id (display-only controllers excepted), with or
/// without a CUDA/NVML/OpenCL/RSMI/LevelZero OS device; PCI switches become pcie_switch nodes in the tree they form,
/// each link at its <c>pci_link_speed</c>; CXL memory devices and DAX devices become pool memory; network and
/// OpenFabrics devices become nics; NVLink/XGMI bandwidth matrices become GPU-GPU links. What hwloc cannot know
/// (memory bandwidth, FLOP/s) comes from <see cref="PciCatalog"/> or documented defaults, listed in the summary.
/// </summary>
public static class HwlocImporter
{
    private const string DefaultsNote = "defaults where hwloc has no figure: DDR5 socket 307 GB/s, HBM socket 1 TB/s, NVM 40 GB/s, CXL x16 Gen5 at 85%, socket link 128 GB/s, CPU 80 GFLOP/s per PU; GPU figures by PCI id from the vendors' datasheets";

    /// <summary>Reads <paramref name="path"/>; a file that is not hwloc 2.x/3.x XML is a <see cref="TopologyException"/>.</summary>
    public static HwlocImport ImportFile(string path)
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

    public static HwlocImport Import(XDocument xml, string name)
    {
        var root = xml.Root;
        if (root is null || root.Name.LocalName != "topology")
            throw new TopologyException($"'{name}' is not an hwloc topology: its root element is not <topology>; produce it with `lstopo --of xml`.");
        var major = HwlocFormat.MajorVersion(root, name);
        var machine = root.Elements("object").FirstOrDefault(o => HwlocFormat.Type(o) == "Machine")
            ?? throw new TopologyException($"'{name}' has no Machine object, so it is not a whole hwloc topology.");
        var walk = new HwlocWalk(major, machine);
        walk.Run();
        new HwlocDistances(walk).AddLinks(root);
        walk.Finish(name);
        var doc = new TopologyDocument
        {
            Name = name,
            Description = $"Imported from hwloc {major}.x XML '{name}' by `fabric sim import-hwloc`.",
            Sources = [$"hwloc topology '{name}' (pci_link_speed for PCIe links, NUMA node and CXL device capacities)", DefaultsNote],
            Nodes = walk.Nodes,
            Links = walk.Links,
        };
        return new HwlocImport(doc, walk.Summary);
    }
}
