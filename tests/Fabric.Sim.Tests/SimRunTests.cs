using Fabric.Model;
using Fabric.Sim.Compute;
using Fabric.Sim.Network;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Tests;

public sealed class SimRunTests
{
    private static Topology.Topology Loopback() => TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "loopback.yaml"));

    private static Workload Tiny(int slots, string policy = "lru", string prefetch = "none", int seed = 1, double zipf = 0.8, int tokens = 40) =>
        new()
        {
            Name = "tiny",
            Model = ModelPresets.Tiny,
            Engines = ["host"],
            Pool = ["pool_shm"],
            Slots = slots,
            Policy = policy,
            Prefetch = prefetch,
            DecodeTokens = tokens,
            Seed = seed,
            Routing = i => new SyntheticRouting(4, 8, 2, 1, seed * 100 + i, zipf),
        };

    [Theory]
    [InlineData(1.0, Sharing.MaxMin)]
    [InlineData(2.5, Sharing.MaxMin)]
    [InlineData(1.0, Sharing.Fifo)]
    [InlineData(2.5, Sharing.Fifo)]
    public void Stall_FollowsTheEnginesVisit_InOrderFetchesOverlappingExpertCompute(double hitSlowdown, Sharing sharing)
    {
        // One engine, one shm link, no prefetch. A visit (as MoeEngine runs it): dense part, then its m misses are
        // fetched in order — the k-th lands L + k·S/B after they were issued — while its h resident experts compute
        // (e each); then each fetched expert is waited for and computed. Summed over the run that is the closed form below.
        // With fifo links the engine works the waits out when it issues the fetches, instead of event by event: the
        // same closed form.
        var t = Loopback();
        // With a hit slowdown k, a visit's hits computed beside its fetches take k·e each.
        var w = Tiny(slots: 4) with { HitSlowdownBesideFetch = hitSlowdown };
        var world = new SimWorld(t, sharing);
        var device = t.Get("host");
        var engine = new EngineModel(world, w, 0, device, [t.Get("pool_shm").Id]);
        var cost = new LayerCost(w.Model, device, w.ContextTokens, w.LayerOverheadNs);
        var visits = new List<(int Layer, long Hits, long Misses)>();
        long lastHits = 0, lastMisses = 0, lastVisits = 0;
        var layer = 0;
        engine.Start();
        var sim = world.Simulation;
        var link = t.Links.Single(l => l.Kind == "shm");
        while (sim.Step())
        {
            if (engine.Result.Visits != lastVisits)
            {
                var s = engine.Pager.Stats;
                visits.Add((layer, s.Hits - lastHits, s.Misses - lastMisses));
                (lastHits, lastMisses, lastVisits) = (s.Hits, s.Misses, engine.Result.Visits);
                layer = (layer + 1) % w.Model.NumHiddenLayers;
            }
        }
        var perExpertBytes = (double)ModelPresets.Tiny.ExpertBytes / link.Bandwidth * 1e9;
        double expected = 0;
        foreach (var (l, h, m) in visits)
        {
            var distinct = (int)(h + m);
            var e = (double)(long)(cost.TimeNs(l, 1, distinct) * cost.ExpertShare(l, 1, distinct) / distinct);
            var now = h * (m > 0 ? (double)(long)(e * hitSlowdown) : e);
            for (var k = 1; k <= m; k++)
            {
                var landed = link.LatencyNs + (k * perExpertBytes);
                expected += Math.Max(0, landed - now);
                now = Math.Max(now, landed) + e;
            }
        }
        Assert.True(visits.Count(v => v.Misses > 0) > 10);
        Assert.True(expected > 0);
        Assert.InRange(engine.Result.StallNs, expected - (visits.Count * 4), expected + (visits.Count * 4));
        Assert.Equal(engine.Pager.Stats.Misses * ModelPresets.Tiny.ExpertBytes, engine.Result.BytesFetched);
    }

    [Fact]
    public void MoreExpertsThanSlots_FetchInRounds_AndFifoTakesTheSameTurnsAsMaxMinOnOneLink()
    {
        // A batch of 4 routes up to 8 distinct experts per layer into 3 slots: the engine computes what fits, releases
        // it and fetches the rest (deferred rounds). One engine on one link: every fetch waits only for the engine's
        // own earlier ones, so fifo (worked out ahead of the clock) and max-min (event by event) agree.
        var t = Loopback();
        var w = Tiny(slots: 3, tokens: 12) with { Batch = 4, Routing = i => new SyntheticRouting(4, 8, 2, 4, 100 + i, 0.3) };
        var exact = SimRunner.Run(t, w);
        var fifo = SimRunner.Run(t, w with { Sharing = Sharing.Fifo });
        var e = exact.Engines.Single();
        Assert.True(e.DemandFetches > 12 * 4 * 3, $"{e.DemandFetches} fetches: the visits did not need more than their slots");
        Assert.Equal(e.DemandFetches, fifo.Engines.Single().DemandFetches);
        Assert.Equal(exact.HitRate, fifo.HitRate);
        Assert.InRange(fifo.StallNs / (double)exact.StallNs, 0.9999, 1.0001);
        Assert.InRange(fifo.MakespanNs / (double)exact.MakespanNs, 0.9999, 1.0001);
    }

    [Fact]
    public void ExpertShare_OfARecordedLastLayer_LeavesTheLmHeadOut()
    {
        // The engine runs the LM head after its last layer: a recorded last-layer visit splits like any other layer.
        var cost = new LayerCost(ModelPresets.Small, Loopback().Get("host"), contextTokens: 128, overheadNs: 0);
        var last = ModelPresets.Small.NumHiddenLayers - 1;
        Assert.True(cost.ExpertShare(last, 1, 2) < cost.ExpertShare(0, 1, 2));
        Assert.Equal(cost.ExpertShare(0, 1, 2, withHead: false), cost.ExpertShare(last, 1, 2, withHead: false));
        Assert.Equal(cost.ExpertShare(0, 1, 2), cost.ExpertShare(0, 1, 2, withHead: false));
    }

    [Fact]
    public void LayerCost_LooksUpTheCostsItWorksOut()
    {
        // Visits of up to three rows come from the table, the rest are worked out: both give what a table-less cost does.
        var device = Loopback().Get("host");
        var model = ModelPresets.Small;
        var computed = new LayerCost(model, device, contextTokens: 128, overheadNs: 500);
        var looked = new LayerCost(model, device, contextTokens: 128, overheadNs: 500, tableRows: 3);
        var last = model.NumHiddenLayers - 1;
        for (var rows = 1; rows <= 5; rows++)
        {
            for (var distinct = 0; distinct <= model.NumLocalExperts; distinct++)
            {
                foreach (var layer in new[] { 0, last })
                {
                    Assert.Equal(computed.TimeNs(layer, rows, distinct), looked.TimeNs(layer, rows, distinct));
                    Assert.Equal(computed.ExpertShare(layer, rows, distinct), looked.ExpertShare(layer, rows, distinct));
                    Assert.Equal(computed.ExpertShare(layer, rows, distinct, withHead: false), looked.ExpertShare(layer, rows, distinct, withHead: false));
                }
            }
        }
        Assert.True(looked.TimeNs(last, 2, 3) > looked.TimeNs(0, 2, 3));
    }

    [Fact]
    public void Makespan_IsWhenTheLastEngineFinished_WhenNoFetchOutlivesIt()
    {
        // Without prefetch every fetch is waited for, so nothing outlives the last engine's last step.
        var r = SimRunner.Run(Loopback(), Tiny(slots: 8, tokens: 7));
        Assert.Equal(r.Engines.Max(e => e.FinishedAtNs), r.MakespanNs);
        Assert.NotEqual(0, r.MakespanNs % 10_000_000);
    }

    [Fact]
    public void AllResident_OnlyStallsOnFirstUse()
    {
        var t = Loopback();
        var r = SimRunner.Run(t, Tiny(slots: 32));
        var e = r.Engines.Single();
        Assert.True(e.Misses <= 32);
        Assert.True(e.HitRate > 0.8);
        var quarter = SimRunner.Run(t, Tiny(slots: 8));
        Assert.True(quarter.TotalTokensPerSecond < r.TotalTokensPerSecond);
        Assert.True(quarter.StallNs > r.StallNs);
    }

    [Fact]
    public void Belady_ThroughTheSimulator_HitsAtLeastAsOftenAsOnlinePolicies()
    {
        var t = Loopback();
        var belady = SimRunner.Run(t, Tiny(slots: 6, policy: "belady"));
        foreach (var policy in new[] { "lru", "lfu", "activation" })
            Assert.True(belady.HitRate >= SimRunner.Run(t, Tiny(slots: 6, policy: policy)).HitRate, policy);
    }

    [Theory]
    [InlineData(Sharing.MaxMin)]
    [InlineData(Sharing.Fifo)]
    public void Prefetch_IssuesFetchesAheadAndCutsStall(Sharing sharing)
    {
        var t = Loopback();
        var none = SimRunner.Run(t, Tiny(slots: 12, zipf: 0) with { Sharing = sharing });
        var next = SimRunner.Run(t, Tiny(slots: 12, prefetch: "next-layer", zipf: 0) with { PredictionAccuracy = 1.0, Sharing = sharing });
        Assert.True(next.Engines[0].Prefetches > 0);
        Assert.True(next.StallNs < none.StallNs, $"{next.StallNs} !< {none.StallNs}");
    }

    [Theory]
    [InlineData(Sharing.MaxMin)]
    [InlineData(Sharing.Fifo)]
    public void Run_IsDeterministicForASeed(Sharing sharing)
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "h100-node-dram.yaml"));
        var w = WorkloadLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "workloads", "mixtral-counts.yaml"), t) with { DecodeTokens = 4, Sharing = sharing };
        var a = SimRunner.Run(t, w);
        var b = SimRunner.Run(t, w);
        Assert.Equal(a.Engines.SelectMany(e => e.StepNs), b.Engines.SelectMany(e => e.StepNs));
        Assert.Equal(a.Events, b.Events);
        var c = SimRunner.Run(t, w with { Routing = i => w.Routing(i + 1000) });
        Assert.NotEqual(a.Engines.SelectMany(e => e.StepNs), c.Engines.SelectMany(e => e.StepNs));
    }

    [Fact]
    public void SharedUplink_SlowsEnginesBehindIt()
    {
        // Two GPUs behind one PCIe switch share its uplink: alone, one engine fetches faster than each of two together.
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "h100-node-dram.yaml"));
        var w = WorkloadLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "workloads", "mixtral-counts.yaml"), t) with { DecodeTokens = 4 };
        var one = SimRunner.Run(t, w with { Engines = ["node0.gpu0"], Pool = ["node0.dram0"] });
        var two = SimRunner.Run(t, w with { Engines = ["node0.gpu0", "node0.gpu1"], Pool = ["node0.dram0"] });
        Assert.True(two.Engines[0].StallNs > one.Engines[0].StallNs * 1.5);
        Assert.Contains(two.Channels, c => c.Name == "node0.cpu0 → node0.pcie0" && c.Utilisation > 0.9);
    }

    [Fact]
    public void ShippedWorkloads_LoadAndRun()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "rdma-pool.yaml"));
        var w = WorkloadLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "workloads", "moe32x64-synthetic.yaml"), t) with { DecodeTokens = 2 };
        Assert.Equal(64, w.Engines.Count);
        var r = SimRunner.Run(t, w);
        Assert.Equal(128, r.Tokens);
        Assert.Contains(r.Channels, c => c.Kind == "rdma");
        var loop = Loopback();
        var tiny = WorkloadLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "workloads", "loopback-tiny.yaml"), loop);
        Assert.Equal(32, SimRunner.Run(loop, tiny).Tokens);
    }

    // First come, first served is an approximation; on the shipped topologies it stays within a few percent of exact
    // max-min sharing (sim/README.md has the measured errors), makes the same paging decisions, and needs fewer events.
    [Theory]
    [InlineData("h100-node-cxl", "mixtral-counts", 16)]
    [InlineData("cxl-rack-4node", "moe32x64-synthetic", 8)]
    [InlineData("rdma-pool", "moe32x64-synthetic", 8)]
    public void Fifo_StaysNearMaxMin_OnTheShippedTopologies(string topology, string workload, int tokens)
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", topology + ".yaml"));
        var w = WorkloadLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "workloads", workload + ".yaml"), t) with { DecodeTokens = tokens };
        var exact = SimRunner.Run(t, w);
        var fifo = SimRunner.Run(t, w with { Sharing = Sharing.Fifo });
        Assert.Equal("max-min", exact.Sharing);
        Assert.Equal("fifo", fifo.Sharing);
        Assert.InRange(fifo.TotalTokensPerSecond / exact.TotalTokensPerSecond, 0.95, 1.05);
        Assert.InRange(fifo.StallNs / (double)exact.StallNs, 0.95, 1.05);
        Assert.Equal(exact.HitRate, fifo.HitRate);
        Assert.Equal(exact.BytesFetched, fifo.BytesFetched);
        Assert.True(fifo.Events < exact.Events, $"{fifo.Events} events in fifo, {exact.Events} in max-min");
    }

    [Fact]
    public void Fifo_GivesTheSameRun_OnAnyNumberOfThreads()
    {
        // 64 engines split between 1, 2 or 3 threads that meet at every window: every step of every engine, every
        // link's bytes and the event count come out the same.
        var (t, w) = SixFifoTokensOfRdmaPool();
        var one = SimRunner.Run(t, w, threads: 1);
        Assert.True(one.Events > 64 * 6 * 32);
        foreach (var threads in new[] { 2, 3 })
            AssertSameRun(one, SimRunner.Run(t, w, threads: threads));
    }

    [Fact]
    public void Fifo_GivesTheSameRun_WhereverItsWindowsEnd()
    {
        // An engine that works ahead past its window's end waits for that window's bookings before its next visit, so
        // that its pager sees every fetch landed by then: shorter windows (more of them, ending elsewhere) change
        // nothing, events included.
        var (t, w) = SixFifoTokensOfRdmaPool();
        var whole = SimRunner.Run(t, w, threads: 2);
        foreach (var window in new[] { 333_333L, 77_777 })
            AssertSameRun(whole, SimRunner.Run(t, w, threads: 2, windowNs: window));
        Assert.Throws<ArgumentOutOfRangeException>(() => SimRunner.Run(t, w, windowNs: 10_000_000_000));
    }

    [Fact]
    public void Fifo_GivesTheSameRun_WhenEveryEngineIsWarmedBeforeItsTurn()
    {
        // A thread that waits at a window's end reads, for the cache's sake, what its next engines will touch; reading
        // must change nothing. Here every engine is warmed before every turn, on one thread and on two.
        var (t, w) = SixFifoTokensOfRdmaPool();
        var plain = SimRunner.Run(t, w, threads: 1);
        foreach (var threads in new[] { 1, 2 })
            AssertSameRun(plain, SimRunner.Run(t, w, progress: null, threads: threads, windowNs: null, warmEveryEngine: true));
    }

    [Fact]
    public void SplitRoutes_KeepApartTheChannelsNoOtherEngineCrosses()
    {
        // A fetch is served on its engine's own channels when issued, on its thread: those must be crossed by no other
        // engine's route, and every other channel of the route must still be served at the window's end.
        var (t, w) = SixFifoTokensOfRdmaPool();
        var world = new SimWorld(t, w.Sharing, w.RateQuantumNs);
        var pools = t.Nodes.Where(n => n.IsPool).Select(n => n.Id).ToList();
        var engines = w.Engines.Select((name, i) => new EngineModel(world, w, i, t.Get(name), pools)).ToList();
        var split = SplitRoute.Of(engines);
        foreach (var e in engines)
        {
            var others = engines.Where(o => o != e).SelectMany(o => o.Routes).SelectMany(r => r.Channels).ToHashSet();
            for (var p = 0; p < pools.Count; p++)
            {
                var (route, parts) = (e.Routes[p], split[e.Index][p]);
                Assert.Equal(route.Channels.Order(), parts.Own.Concat(parts.Shared).Order());
                Assert.Equal(route.Channels.Where(c => !others.Contains(c)).Order(), parts.Own.Order());
                Assert.Equal(route.LatencyNs, parts.LatencyNs);
            }
            Assert.NotEmpty(split[e.Index][0].Own); // its GPU's own links
            Assert.NotEmpty(split[e.Index][0].Shared); // the pool's
        }
    }

    private static (Topology.Topology, Workload) SixFifoTokensOfRdmaPool()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "rdma-pool.yaml"));
        var w = WorkloadLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "workloads", "moe32x64-synthetic.yaml"), t)
            with { DecodeTokens = 6, Sharing = Sharing.Fifo };
        return (t, w);
    }

    // The same JSON but for the wall time, and every engine's step latencies.
    private static void AssertSameRun(SimResult expected, SimResult actual)
    {
        static string Json(SimResult r)
        {
            var json = ResultJson.ToJson(r);
            json.Remove("wall_seconds");
            return json.ToJsonString();
        }
        Assert.Equal(Json(expected), Json(actual));
        Assert.Equal(expected.Engines.SelectMany(e => e.StepNs), actual.Engines.SelectMany(e => e.StepNs));
    }

    [Fact]
    public void Workload_BadPlacement_IsOneSentence()
    {
        var t = Loopback();
        var doc = new WorkloadDocument { Model = "tiny", Engines = [new EnginePlacementDocument { Gpu = "gpu7" }] };
        var m = Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message;
        Assert.Equal("w.yaml places an engine on 'gpu7', which topology 'loopback' does not have.", m);
        doc = new WorkloadDocument { Model = "tiny", Policy = "fifo" };
        Assert.StartsWith("w.yaml: there is no policy named 'fifo'", Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message);
        doc = new WorkloadDocument { Model = "tiny", DecodeTokens = 0 };
        Assert.Equal("w.yaml: decode_tokens is 0; give at least 1.", Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message);
        doc = new WorkloadDocument { Model = "tiny", Batch = 0 };
        Assert.Equal("w.yaml: batch is 0; give at least 1.", Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message);
        doc = new WorkloadDocument { Model = "tiny", ResidentFraction = 7 };
        Assert.Equal("w.yaml: resident_fraction is 7; give a fraction above 0 and at most 1.", Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message);
        doc = new WorkloadDocument { Model = "tiny", Routing = new RoutingDocument { Kind = "synthetic", Zipf = -1 } };
        Assert.Equal("w.yaml: zipf is -1; give 0 (flat) or more.", Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message);
        doc = new WorkloadDocument { Model = "tiny", ContextTokens = -1 };
        Assert.Equal("w.yaml: context_tokens is -1; it cannot be negative.", Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message);
        doc = new WorkloadDocument { Model = "tiny", Sharing = "fair" };
        Assert.Equal("w.yaml: there is no sharing model named 'fair'; use max-min or fifo.", Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message);
        doc = new WorkloadDocument { Model = "tiny", Sharing = "fifo", RateQuantum = "1ms" };
        Assert.Equal("w.yaml: rate_quantum applies to max-min sharing only, not to fifo.", Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message);
        doc = new WorkloadDocument { Model = "gpt-5" };
        Assert.StartsWith("The model 'gpt-5' is neither a preset", Assert.Throws<TopologyException>(() => WorkloadLoader.Resolve(doc, t, ".", "w.yaml")).Message);
    }

    [Fact]
    public void Workload_MisspelledKey_NamesTheKeysAllowedThere()
    {
        var dir = Directory.CreateTempSubdirectory("fabric-workload-");
        try
        {
            var path = Path.Combine(dir.FullName, "w.yaml");
            File.WriteAllText(path, "model: tiny\nrouting:\n  kind: synthetic\n  zipff: 1.0\n");
            Assert.Equal("w.yaml line 4: unknown key 'zipff'; the keys here are kind, zipf, temporal_reuse, cross_layer, counts, trace, use_trace_compute.",
                Assert.Throws<TopologyException>(() => WorkloadLoader.LoadFile(path, Loopback())).Message);
            File.WriteAllText(path, "model: tiny\nengines: gpu0\n");
            Assert.Equal("w.yaml line 2: expected a list here, found a single value.",
                Assert.Throws<TopologyException>(() => WorkloadLoader.LoadFile(path, Loopback())).Message);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
