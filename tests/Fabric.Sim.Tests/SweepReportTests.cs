using Fabric.Model;
using Fabric.Sim.Reports;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Tests;

public sealed class SweepReportTests
{
    [Fact]
    public void Sweep_WritesOneCsvRowPerPoint_AndAnSvgChartPerMetric()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "loopback.yaml"));
        var points = new List<SweepPoint>();
        foreach (var slots in new[] { 4, 16 })
        {
            foreach (var policy in new[] { "lru", "belady" })
            {
                var w = new Workload
                {
                    Name = "tiny", Model = ModelPresets.Tiny, Engines = ["host"], Slots = slots, Policy = policy, DecodeTokens = 10,
                    Routing = i => new SyntheticRouting(4, 8, 2, 1, 3, zipf: 1),
                };
                points.Add(new SweepPoint(t.Name, policy, "none", slots, slots / 32.0, SimRunner.Run(t, w)));
            }
        }
        var csv = SweepReport.Csv(points).Trim().Split('\n');
        Assert.Equal(5, csv.Length);
        Assert.StartsWith("topology,policy,prefetch,slots,", csv[0]);
        Assert.StartsWith("loopback,belady,none,16,0.5,", csv[4]);
        Assert.EndsWith(",max-min,", csv[4]);
        var html = SweepReport.Html(points, "test sweep");
        Assert.DoesNotContain("first come, first served", html);
        Assert.Equal(4, html.Split("<svg").Length - 1);
        Assert.Contains("belady / none", html);
        Assert.EndsWith("</html>\n", html);
    }
}
