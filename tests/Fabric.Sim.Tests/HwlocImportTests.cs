using System.Diagnostics;
using System.Xml.Linq;
using Fabric.Sim.Topology;
using Fabric.Sim.Topology.Hwloc;

namespace Fabric.Sim.Tests;

/// <summary>
/// import-hwloc on hand-written files in both formats hwloc writes (2.x and 3.x, following hwloc's DTD and writer;
/// the 2.x ones load in lstopo 2.9) and on lstopo's own output: GPUs by PCI id with and without OS devices, PCIe
/// switch trees with per-link speed, NVLink matrices, every memory tier, CXL and DAX devices, NICs, and what is skipped.
/// </summary>
public sealed class HwlocImportTests
{
    private static (Topology.Topology Topology, HwlocSummary Summary) Import(string file)
    {
        var (doc, summary) = HwlocImporter.ImportFile(Path.Combine(AppContext.BaseDirectory, "TestData", file));
        return (TopologyLoader.Load(Yaml.Serializer.Serialize(doc), file), summary);
    }

    private static TopologyNode Other(Topology.Topology t, TopologyLink l, TopologyNode n) => t.Nodes[l.A == n.Id ? l.B : l.A];

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Plx16_SixteenGpusBehindFourSwitches_WithTheirLinkSpeeds(int version)
    {
        var (t, s) = Import($"hwloc{version}-plx16.xml");
        var gpus = t.Nodes.Where(n => n.Kind == NodeKind.Gpu).ToList();
        Assert.Equal(16, gpus.Count);
        Assert.All(gpus, g => Assert.Equal(80L << 30, g.MemoryBytes));
        Assert.All(gpus, g => Assert.Equal(756e12, g.PeakFlops, 1));
        var switches = t.Nodes.Where(n => n.Kind == NodeKind.PcieSwitch).ToList();
        Assert.Equal(4, switches.Count);
        foreach (var g in gpus)
        {
            var link = t.Links.Single(l => l.A == g.Id || l.B == g.Id);
            Assert.Equal(NodeKind.PcieSwitch, Other(t, link, g).Kind);
            Assert.Equal(31.507692e9, link.Bandwidth, 1e3);
        }
        foreach (var sw in switches)
        {
            var neighbours = t.Neighbours(sw.Id).Select(x => t.Nodes[x.Neighbour].Kind).ToList();
            Assert.Equal(1, neighbours.Count(k => k == NodeKind.Cpu));
            Assert.Equal(4, neighbours.Count(k => k == NodeKind.Gpu));
        }
        Assert.Equal(2, t.Nodes.Count(n => n.Kind == NodeKind.Nic));
        Assert.Equal(2, t.Nodes.Count(n => n.Kind == NodeKind.Dram && n.MemoryBytes == 1L << 40));
        Assert.Equal(16, s.GpuCount);
        Assert.Contains(s.Skipped, x => x.Contains("ASPEED", StringComparison.Ordinal) && x.Contains("not a GPU", StringComparison.Ordinal));
        Assert.Contains(s.Skipped, x => x.StartsWith("storage controller", StringComparison.Ordinal));
        Assert.Contains(s.Lines(), l => l.Contains("16 × NVIDIA H100 PCIe 80GB (10de:2331)", StringComparison.Ordinal));
        Assert.Contains(s.Nics, n => n.Contains("ConnectX-7 RDMA, 400Gb/s", StringComparison.Ordinal));
        Assert.Empty(s.Warnings);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void CxlHost_CxlMemoryDevicesBecomePoolMemory_AndTheVgaIsNoGpu(int version)
    {
        var (t, s) = Import($"hwloc{version}-cxl-host.xml");
        var cxl = t.Nodes.Where(n => n.Kind == NodeKind.CxlType3).ToList();
        Assert.Equal(2, cxl.Count);
        Assert.All(cxl, c => Assert.True(c.IsPool));
        Assert.All(cxl, c => Assert.Equal(128L << 30, c.MemoryBytes));
        Assert.All(cxl, c => Assert.Equal(63.015384e9, t.Links.Single(l => l.A == c.Id || l.B == c.Id).Bandwidth, 1e3));
        Assert.DoesNotContain(t.Nodes, n => n.Kind == NodeKind.Gpu);
        Assert.Contains(s.Skipped, x => x.Contains("CXL-DRAM NUMA node", StringComparison.Ordinal));
        Assert.Contains(s.Memory, x => x.Contains("shm:///dev/dax1.0", StringComparison.Ordinal));
        Assert.Equal((256L << 30) + (256L << 30), s.PoolBytes);
        Assert.Contains(s.Warnings, w => w.Contains("no GPU", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void MemoryTiers_EachBecomesItsNodeTypeWithItsCapacity(int version)
    {
        var (t, s) = Import($"hwloc{version}-memory-tiers.xml");
        Assert.Equal(512L << 30, t.Get("numa0").MemoryBytes);
        Assert.Equal(NodeKind.Dram, t.Get("hbm0").Kind);
        Assert.Equal(64L << 30, t.Get("hbm0").MemoryBytes);
        Assert.Equal(NodeKind.Dram, t.Get("pmem0").Kind);
        Assert.Equal(1L << 40, t.Get("pmem0").MemoryBytes);
        Assert.Equal(NodeKind.CxlType3, t.Get("cxl0").Kind);
        Assert.Equal(256L << 30, t.Get("cxl0").MemoryBytes);
        Assert.Equal(NodeKind.CxlType3, t.Get("dax0").Kind);
        Assert.Equal(64L << 30, t.Get("dax0").MemoryBytes);
        Assert.Contains(s.Skipped, x => x.Contains("GPU memory", StringComparison.Ordinal));
        Assert.Equal(1.0e12, t.Links.Single(l => l.A == t.Get("hbm0").Id).Bandwidth, 1);
        Assert.Equal(5, s.MemoryNodes);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void HgxNvlink_GpuLinksComeFromTheBandwidthMatrix(int version)
    {
        var (t, s) = Import($"hwloc{version}-hgx-nvlink.xml");
        Assert.Equal(8, s.GpuCount);
        Assert.Equal(4, t.Nodes.Count(n => n.Kind == NodeKind.NvSwitch));
        var nvlinks = t.Links.Where(l => l.Kind == "nvlink").ToList();
        Assert.Equal(32, nvlinks.Count);
        Assert.Equal(16, nvlinks.Count(l => Math.Abs(l.Bandwidth - 112.5e9) < 1));
        Assert.All(nvlinks, l => Assert.Contains(NodeKind.Gpu, new[] { t.Nodes[l.A].Kind, t.Nodes[l.B].Kind }));
        Assert.DoesNotContain(s.Skipped, x => x.Contains("NVSwitch", StringComparison.Ordinal));
    }

    [Fact]
    public void UnknownGpuModel_IsImportedAndSaidToBeUnknown()
    {
        var xml = XDocument.Parse("""
            <topology version="2.0"><object type="Machine" cpuset="0x1" gp_index="1">
              <object type="Package" cpuset="0x1" gp_index="2">
                <object type="NUMANode" os_index="0" cpuset="0x1" local_memory="1073741824" gp_index="3"/>
                <object type="PU" os_index="0" cpuset="0x1" gp_index="4"/>
                <object type="PCIDev" gp_index="5" pci_busid="0000:01:00.0" pci_type="0302 [10de:ffff] [10de:0000] a1" pci_link_speed="0.000000"/>
              </object></object></topology>
            """);
        var (doc, s) = HwlocImporter.Import(xml, "unknown");
        var gpu = Assert.Single(doc.Nodes!, n => n.Type == "gpu");
        Assert.Contains("unknown model (10de:ffff)", gpu.Source, StringComparison.Ordinal);
        Assert.Contains(s.Gpus, g => g.StartsWith("unknown model (10de:ffff)", StringComparison.Ordinal));
        Assert.Contains(s.Assumed, a => a.Contains("pci_link_speed", StringComparison.Ordinal));
    }

    [Fact]
    public void OsDeviceType_IsAnEnumerationIn2xAndABitMaskIn3x()
    {
        var osdev = new XElement("object", new XAttribute("type", "OSDev"), new XAttribute("name", "x"), new XAttribute("osdev_type", "2"));
        Assert.Equal(OsDeviceKind.Network, HwlocFormat.Kind(osdev, 2));
        Assert.Equal(OsDeviceKind.Memory, HwlocFormat.Kind(osdev, 3));
        var cxlmem = new XElement("object", new XAttribute("type", "OSDev"), new XAttribute("name", "mem0"), new XAttribute("subtype", "CXLMem"), new XAttribute("osdev_type", "0"));
        Assert.Equal(OsDeviceKind.Memory, HwlocFormat.Kind(cxlmem, 2));
    }

    [Fact]
    public void Hwloc1xXml_IsRefusedInOneSentence()
    {
        var xml = XDocument.Parse("""<topology><object type="Machine" cpuset="0x1"/></topology>""");
        var m = Assert.Throws<TopologyException>(() => HwlocImporter.Import(xml, "old")).Message;
        Assert.Contains("hwloc 1.x", m, StringComparison.Ordinal);
    }

    [Fact]
    public void NotXml_IsOneSentence()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, "not xml");
        try
        {
            Assert.Contains("is not XML", Assert.Throws<TopologyException>(() => HwlocImporter.ImportFile(path)).Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void LstopoOfTheDevelopmentVm_YieldsCpuDramAndNic_AndWarnsOfNoGpu()
    {
        var (t, s) = Import("lstopo-dev-vm.xml");
        Assert.Single(t.Nodes, n => n.Kind == NodeKind.Cpu);
        Assert.Equal(25276157952L, Assert.Single(t.Nodes, n => n.Kind == NodeKind.Dram).MemoryBytes);
        Assert.Single(t.Nodes, n => n.Kind == NodeKind.Nic);
        Assert.Contains(s.Warnings, w => w.Contains("no GPU", StringComparison.Ordinal));
        Assert.DoesNotContain(s.Warnings, w => w.Contains("no pool memory", StringComparison.Ordinal));
    }

    [LstopoFact]
    public void LstopoOfThisMachine_Imports()
    {
        var path = Path.Combine(Path.GetTempPath(), $"lstopo-{Environment.ProcessId}-{Guid.NewGuid():N}.xml");
        try
        {
            using (var p = Process.Start(new ProcessStartInfo("lstopo", ["--of", "xml", "-f", path]) { RedirectStandardError = true })!)
            {
                Assert.True(p.WaitForExit(30_000), "lstopo did not finish in 30 s");
                Assert.Equal(0, p.ExitCode);
            }
            var (doc, s) = HwlocImporter.ImportFile(path);
            var t = TopologyLoader.Load(Yaml.Serializer.Serialize(doc), "this machine");
            Assert.Contains(t.Nodes, n => n.Kind == NodeKind.Cpu);
            Assert.True(s.PoolBytes > 0);
            Assert.Equal(s.GpuCount == 0, s.Warnings.Any(w => w.Contains("no GPU", StringComparison.Ordinal)));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

/// <summary>A fact that needs lstopo (Debian package hwloc, which `./fabric test` installs when run as root).</summary>
public sealed class LstopoFactAttribute : FactAttribute
{
    public LstopoFactAttribute()
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "lstopo")));
        if (!onPath)
            Skip = "lstopo is not installed (Debian package hwloc; `./fabric test` installs it when run as root)";
    }
}
