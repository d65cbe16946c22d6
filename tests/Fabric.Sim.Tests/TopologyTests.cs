using Fabric.Common;
using Fabric.Sim.Topology;

namespace Fabric.Sim.Tests;

public sealed class TopologyTests
{
    private const string MinimalNodes = """
        nodes:
          - { name: gpu0, type: gpu, memory: 80GiB, memory_bandwidth: 3.35TB/s, peak_flops: 989TFLOP/s }
          - { name: dram0, type: dram, memory: 1TiB }
        """;

    private static string Problem(string yaml) => Assert.Throws<TopologyException>(() => TopologyLoader.Load(yaml, "t.yaml")).Message;

    [Fact]
    public void Pcie_Gen5x16_Is63GBPerDirection()
    {
        Assert.Equal(63.015e9, Pcie.BytesPerSecond(5, 16), 1e7);
        Assert.Equal(0.25e9, Pcie.BytesPerSecond(1, 1), 1e3);
        Assert.Equal(0, Pcie.BytesPerSecond(7, 16));
    }

    [Theory]
    [InlineData("64GB/s", 64e9)]
    [InlineData("400Gb/s", 50e9)]
    [InlineData("3.35TB/s", 3.35e12)]
    [InlineData("15", 15e9)]
    public void Bandwidth_Units_Parse(string text, double expected)
    {
        Assert.True(Units.TryParseBandwidth(text, out var v));
        Assert.Equal(expected, v, 1);
    }

    [Fact]
    public void Durations_And_Sizes_Parse()
    {
        Assert.True(Units.TryParseDuration("1.5us", out var ns));
        Assert.Equal(1500, ns);
        Assert.True(ByteSize.TryParse("80GiB", out var b));
        Assert.Equal(80L << 30, b);
        Assert.False(ByteSize.TryParse("lots", out _));
    }

    [Fact]
    public void Link_FromPcieGenAndWidth_GetsBandwidthTimesEfficiency()
    {
        var t = TopologyLoader.Load(MinimalNodes + "\nlinks:\n  - { from: dram0, to: gpu0, pcie_gen: 5, pcie_width: 16, efficiency: 0.5, latency: 1us }\n");
        Assert.Equal(Pcie.BytesPerSecond(5, 16) * 0.5, t.Links[0].Bandwidth, 1);
        Assert.Equal(1000, t.Links[0].LatencyNs);
    }

    [Fact]
    public void Templates_InstantiateNamesAndLinks()
    {
        var t = TopologyLoader.Load("""
            templates:
              box:
                nodes:
                  - { name: "gpu{i}", type: gpu, count: 4, memory: 80GiB, memory_bandwidth: 3TB/s, peak_flops: 1PFLOP/s }
                  - { name: "sw{i}", type: pcie_switch, count: 2 }
                links:
                  - { from: "sw{i/2}", to: "gpu{i}", count: 4, bandwidth: 50GB/s }
              rack:
                instances:
                  - { template: box, count: 3, name: "box{i}" }
            nodes:
              - { name: pool, type: dram }
            instances:
              - { template: rack, count: 2, name: "rack{i}" }
            links:
              - { from: pool, to: "rack{i/6}.box{i/2%3}.sw{i%2}", count: 12, bandwidth: 50GB/s }
            """);
        Assert.Equal(1 + 2 * 3 * 6, t.Nodes.Count);
        Assert.NotNull(t.Find("rack1.box2.gpu3"));
        Assert.Equal(2 * 3 * 4 + 12, t.Links.Count);
        var gpu = t.Get("rack1.box2.gpu3");
        Assert.Contains(t.Neighbours(gpu.Id), n => t.Nodes[n.Neighbour].Name == "rack1.box2.sw1");
    }

    [Fact]
    public void UnknownNode_IsOneSentence()
    {
        var m = Problem(MinimalNodes + "\nlinks:\n  - { from: dram0, to: gpu9, bandwidth: 10GB/s }\n");
        Assert.Equal("The link dram0 → gpu9 in t.yaml names the unknown node 'gpu9'.", m);
    }

    [Fact]
    public void LinkToNowhere_IsOneSentence()
    {
        var m = Problem(MinimalNodes + "\nlinks:\n  - { from: dram0, bandwidth: 10GB/s }\n  - { from: dram0, to: gpu0, bandwidth: 10GB/s }\n");
        Assert.Equal("Link 1 in t.yaml (dram0 → ?) goes nowhere: it needs both 'from' and 'to'.", m);
    }

    [Fact]
    public void MissingBandwidth_IsOneSentence()
    {
        var m = Problem(MinimalNodes + "\nlinks:\n  - { from: dram0, to: gpu0, latency: 1us }\n");
        Assert.Equal("The link dram0 → gpu0 has no bandwidth: give bandwidth, pcie_gen and pcie_width, or calibrated.", m);
    }

    [Fact]
    public void GpuWithoutPathToPool_IsOneSentence()
    {
        var m = Problem(MinimalNodes + """

              - { name: gpu1, type: gpu, memory: 80GiB, memory_bandwidth: 3.35TB/s, peak_flops: 989TFLOP/s }
            links:
              - { from: dram0, to: gpu0, bandwidth: 10GB/s }
            """);
        Assert.Equal("GPU 'gpu1' has no path to any pool memory.", m);
    }

    [Fact]
    public void DuplicateName_IsOneSentence()
    {
        var m = Problem(MinimalNodes + "\n  - { name: gpu0, type: nic }\nlinks:\n  - { from: dram0, to: gpu0, bandwidth: 10GB/s }\n");
        Assert.Equal("The node name 'gpu0' is used twice.", m);
    }

    [Fact]
    public void UnknownType_And_UnknownKey_AreOneSentenceEach()
    {
        Assert.StartsWith("Node 'x' has the unknown type 'tpu'", Problem(MinimalNodes + "\n  - { name: x, type: tpu }\n"));
        Assert.Equal("t.yaml line 2: unknown key 'colour'; the keys here are name, type, count, memory, memory_bandwidth, peak_flops, pool, source.",
            Problem("nodes:\n  - { name: x, type: gpu, colour: red }\n"));
        Assert.Contains("unknown key 'bandwith'; the keys here are from, to, count, kind, bandwidth, latency,",
            Problem(MinimalNodes + "\nlinks:\n  - { from: dram0, to: gpu0, bandwith: 1GB/s }\n"));
    }

    // YamlDotNet's own messages name .NET types ("Invalid cast from 'System.String' to 'System.Collections...").
    [Theory]
    [InlineData("nodes: 3\n", "t.yaml line 1: expected a list here, found a single value.")]
    [InlineData("templates: [1]\n", "t.yaml line 1: expected keys and values here, found a list.")]
    [InlineData("nodes:\n  - [a, b]\n", "t.yaml line 2: expected keys and values (name, type, count, memory, memory_bandwidth, peak_flops, pool, source) here.")]
    [InlineData("links: { from: a }\n", "t.yaml line 1: expected a list here, found keys and values.")]
    [InlineData("name: [1, 2]\n", "t.yaml line 1: expected a single value here.")]
    [InlineData("nodes:\n  - { name: g, type: gpu, count: [1] }\n", "t.yaml line 2: expected a number here.")]
    [InlineData("nodes:\n  - { name: g, type: gpu, memory: { a: 1 } }\n", "t.yaml line 2: expected a single value here, found keys and values.")]
    [InlineData("nodes:\n  - { name: g, type: gpu, count: abc }\n", "t.yaml line 2: 'abc' is not a number.")]
    [InlineData("nodes:\n  - { name: g, type: dram, pool: maybe }\n", "t.yaml line 2: 'maybe' is not true or false.")]
    public void MisshapenYaml_IsOneSentence_WithoutDotNetTypes(string yaml, string expected)
    {
        Assert.Equal(expected, Problem(yaml));
    }

    [Fact]
    public void CountOutOfRange_IsOneSentence_AndMakesNothing()
    {
        Assert.StartsWith("t.yaml has 2 problems: Node 'g{i}' in t.yaml has count -2; give 1 to 1,000,000.",
            Problem("nodes:\n  - { name: \"g{i}\", type: gpu, count: -2 }\n"));
        Assert.Equal("Link 1 (dram0 → gpu0) in t.yaml has count 0; give 1 to 1,000,000.",
            Problem(MinimalNodes + "\nlinks:\n  - { from: dram0, to: gpu0, bandwidth: 1GB/s, count: 0 }\n"));
    }

    [Fact]
    public void TemplatesMultiplyingPastTheLimit_AreOneSentence_NotAnOutOfMemoryKill()
    {
        // 100,000 instances of 1,000 nodes each would be 10^8 nodes; the loader refuses past 4 million, before making any.
        var m = Problem("templates:\n  rack:\n    nodes: [{ name: \"n{i}\", type: cpu, count: 1000 }]\ninstances:\n  - { template: rack, count: 100000, name: \"r{i}\" }\n");
        Assert.Equal("t.yaml would have more than 4,000,000 nodes and links; check the counts of its templates and instances.", m);
    }

    [Fact]
    public void SeveralProblems_AreAllReported()
    {
        var m = Problem(MinimalNodes + "\nlinks:\n  - { from: dram0, to: nope, bandwidth: 1GB/s }\n  - { from: dram0, to: gpu0 }\n");
        Assert.StartsWith("t.yaml has 2 problems:", m);
        Assert.Contains("'nope'", m);
        Assert.Contains("no bandwidth", m);
    }

    [Fact]
    public void CalibratedLink_TakesMeasuredParameters()
    {
        var t = TopologyLoader.Load(MinimalNodes + """

            calibration:
              source: test
              links:
                shm: { bandwidth: 15GB/s, latency: 2us }
            links:
              - { from: dram0, to: gpu0, calibrated: shm }
            """);
        Assert.Equal(15e9, t.Links[0].Bandwidth, 1);
        Assert.Equal(2000, t.Links[0].LatencyNs);
        Assert.StartsWith("The link dram0 → gpu0 refers to the calibration entry 'rdma'",
            Problem(MinimalNodes + "\nlinks:\n  - { from: dram0, to: gpu0, calibrated: rdma }\n"));
    }

    [Theory]
    [InlineData("loopback.yaml", 3)]
    [InlineData("h100-node-dram.yaml", 17)]
    [InlineData("h100-node-cxl.yaml", 19)]
    [InlineData("cxl-rack-4node.yaml", 4 * 17 + 5)]
    [InlineData("rdma-pool.yaml", 8 * 29 + 4 * 6 + 1)]
    [InlineData("rdma-1024.yaml", 128 * 29 + 32 * 6 + 1)]
    public void ShippedTopologies_Load(string file, int nodes)
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", file));
        Assert.Equal(nodes, t.Nodes.Count);
    }

    [Fact]
    public void Calibrate_RewritesOnlyTheCalibrationBlock()
    {
        var json = Path.GetTempFileName();
        File.WriteAllText(json, """
            [{"transport":"shm","size_bytes":67108864,"gbps":16.25,"p50_us":4100,"p99_us":5000,"baseline_gbps":20.1,"ratio":0.8,"reads":10,"baseline_p50_us":3000},
             {"transport":"shm","size_bytes":4096,"gbps":1.2,"p50_us":1.5,"p99_us":3,"baseline_gbps":30,"ratio":0.04,"reads":1000,"baseline_p50_us":0.2},
             {"transport":"tcp","size_bytes":67108864,"gbps":3.9,"p50_us":17000,"p99_us":20000,"baseline_gbps":4.4,"ratio":0.9,"reads":10,"baseline_p50_us":1},
             {"transport":"tcp","size_bytes":4096,"gbps":0.1,"p50_us":35,"p99_us":80,"baseline_gbps":0.2,"ratio":0.5,"reads":1000,"baseline_p50_us":20}]
            """);
        try
        {
            var yaml = File.ReadAllText(Path.Combine(RepoFiles.Root, "topologies", "loopback.yaml"));
            var m = Calibrator.ReadBenchJson(json);
            Assert.Equal(["shm", "tcp"], m.Select(x => x.Transport));
            var rewritten = Calibrator.Rewrite(yaml, m, "test bench", new DateOnly(2026, 1, 2));
            var t = TopologyLoader.Load(rewritten);
            var shm = t.Links.Single(l => l.Kind == "shm");
            Assert.Equal(16.25e9, shm.Bandwidth, 1);
            Assert.Equal(1500, shm.LatencyNs);
            Assert.Equal(35_000, t.Links.Single(l => l.Kind == "tcp").LatencyNs);
            Assert.Contains("description: >", rewritten);
            Assert.Contains("date: \"2026-01-02\"", rewritten);
        }
        finally
        {
            File.Delete(json);
        }
    }
}
