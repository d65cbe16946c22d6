using Fabric.Model;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Tests;

public sealed class SweepRunnerTests
{
    [Fact]
    public void SweepRunner_SideBySide_GivesEachPointTheResultOfARunOnItsOwn_InPlanOrder()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "loopback.yaml"));
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
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "loopback.yaml"));
        var w = new Workload
        {
            Name = "tiny", Model = ModelPresets.Tiny, Engines = ["host"], Slots = 4, DecodeTokens = 4,
            Routing = i => new SyntheticRouting(4, 8, 2, 1, 3, zipf: 1),
        };
        var e = Assert.Throws<TopologyException>(() => SweepRunner.Run([(t, w), (t, w with { Engines = ["nowhere"] })], jobs: 2));
        Assert.Contains("nowhere", e.Message);
    }
}
