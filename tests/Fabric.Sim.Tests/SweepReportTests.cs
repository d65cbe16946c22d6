using Fabric.MemoryPool.Model;
using Fabric.Sim.Reports;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Tests;

public sealed class SweepReportTests
{
    private static string Repo([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", ".."));

    [Fact]
    public void Sweep_WritesOneCsvRowPerPoint_AndAnSvgChartPerMetric()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(Repo(), "topologies", "loopback.yaml"));
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
        var html = SweepReport.Html(points, "test sweep");
        Assert.Equal(4, html.Split("<svg").Length - 1);
        Assert.Contains("belady / none", html);
        Assert.EndsWith("</html>\n", html);
    }

    [Fact]
    public void SweepRunner_SideBySide_GivesEachPointTheResultOfARunOnItsOwn_InPlanOrder()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(Repo(), "topologies", "loopback.yaml"));
        var plan = new List<(Topology.Topology, Workload)>();
        foreach (var slots in new[] { 4, 8, 16 })
        {
            foreach (var prefetch in new[] { "none", "next-layer" })
            {
                plan.Add((t, new Workload
                {
                    Name = "tiny", Model = ModelPresets.Tiny, Engines = ["host"], Pool = ["pool_shm"], Slots = slots, Prefetch = prefetch,
                    DecodeTokens = 12, Routing = i => new SyntheticRouting(4, 8, 2, 1, 10 + i, zipf: 1),
                }));
            }
        }
        var alone = plan.Select(p => SimRunner.Run(p.Item1, p.Item2)).ToList();
        var finished = new System.Collections.Concurrent.ConcurrentBag<int>();
        var together = SweepRunner.Run(plan, jobs: 3, (i, _) => finished.Add(i));
        Assert.Equal(Enumerable.Range(0, plan.Count), finished.Order());
        for (var i = 0; i < plan.Count; i++)
        {
            Assert.Equal((plan[i].Item2.Slots, plan[i].Item2.Prefetch), (together[i].Slots, together[i].Prefetch));
            Assert.Equal(alone[i].MakespanNs, together[i].Result.MakespanNs);
            Assert.Equal(alone[i].StallNs, together[i].Result.StallNs);
            Assert.Equal(alone[i].Events, together[i].Result.Events);
        }
        Assert.True(alone.Select(r => r.MakespanNs).Distinct().Count() > 1, "the points should differ, or the order is not tested");
    }

    [Fact]
    public void SweepRunner_APointThatCannotRun_FailsWithItsOwnError()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(Repo(), "topologies", "loopback.yaml"));
        var w = new Workload
        {
            Name = "tiny", Model = ModelPresets.Tiny, Engines = ["host"], Slots = 4, DecodeTokens = 4,
            Routing = i => new SyntheticRouting(4, 8, 2, 1, 3, zipf: 1),
        };
        var e = Assert.Throws<TopologyException>(() => SweepRunner.Run([(t, w), (t, w with { Engines = ["nowhere"] })], jobs: 2));
        Assert.Contains("nowhere", e.Message);
    }
}
