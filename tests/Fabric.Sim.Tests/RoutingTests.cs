using Fabric.Sim.Workloads;

namespace Fabric.Sim.Tests;

public sealed class RoutingTests
{
    private static double[] Frequencies(IRoutingSource r, int layer, int experts, int steps, int layers = 4, int width = 2)
    {
        var counts = new double[experts];
        var buffer = new int[width];
        for (var s = 0; s < steps; s++)
        {
            for (var l = 0; l < layers; l++)
            {
                var n = r.Next(s, l, buffer);
                if (l == layer)
                {
                    foreach (var e in buffer.AsSpan(0, n))
                        counts[e]++;
                }
            }
        }
        var total = counts.Sum();
        return [.. counts.Select(c => c / total)];
    }

    [Fact]
    public void Zipf_ConcentratesOnTopExpert_AndChoicesAreDistinct()
    {
        var flat = Frequencies(new SyntheticRouting(4, 8, 2, 1, 1, zipf: 0), 1, 8, 4000).Max();
        var skewed = Frequencies(new SyntheticRouting(4, 8, 2, 1, 1, zipf: 1.5), 1, 8, 4000).Max();
        Assert.InRange(flat, 0.10, 0.15);
        Assert.True(skewed > 0.3);
        var r = new SyntheticRouting(4, 8, 2, 3, 5, zipf: 3, temporalReuse: 0.5, crossLayer: 0.4);
        var buffer = new int[6];
        for (var i = 0; i < 400; i++)
        {
            r.Next(i / 4, i % 4, buffer);
            for (var b = 0; b < 3; b++)
                Assert.NotEqual(buffer[b * 2], buffer[(b * 2) + 1]);
        }
    }

    [Fact]
    public void TemporalReuse_RepeatsLastStepsExperts()
    {
        static double RepeatRate(double reuse)
        {
            var r = new SyntheticRouting(1, 64, 1, 1, 3, zipf: 0, temporalReuse: reuse);
            var buffer = new int[1];
            var last = -1;
            var repeats = 0;
            for (var s = 0; s < 2000; s++)
            {
                r.Next(s, 0, buffer);
                repeats += buffer[0] == last ? 1 : 0;
                last = buffer[0];
            }
            return repeats / 2000.0;
        }
        Assert.InRange(RepeatRate(0), 0, 0.05);
        Assert.InRange(RepeatRate(0.7), 0.6, 0.8);
    }

    [Fact]
    public void CrossLayer_MakesNextLayerPredictableFromThisOne()
    {
        var r = new SyntheticRouting(2, 16, 1, 1, 9, zipf: 0, crossLayer: 1.0);
        var buffer = new int[1];
        var follow = new Dictionary<int, HashSet<int>>();
        var prev = 0;
        for (var s = 0; s < 500; s++)
        {
            r.Next(s, 0, buffer);
            prev = buffer[0];
            r.Next(s, 1, buffer);
            if (!follow.TryGetValue(prev, out var set))
                follow[prev] = set = [];
            set.Add(buffer[0]);
        }
        Assert.All(follow.Values, s => Assert.Single(s));
    }

    [Fact]
    public void EnginesOfOneWorkload_ShareTheModelsHotExperts_ButDrawTheirOwnTokens()
    {
        // Which experts are hot is the model's: with a ranking per engine, 1,024 engines would spread their misses
        // evenly over the pool nodes where a real deployment piles them onto the nodes holding the hot experts.
        var t = Fabric.Sim.Topology.TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "h100-node-dram.yaml"));
        var w = WorkloadLoader.Resolve(new WorkloadDocument
        {
            Model = "moe-32x64",
            Seed = 5,
            Routing = new RoutingDocument { Kind = "synthetic", Zipf = 1.2, TemporalReuse = 0.2, CrossLayer = 0.2 },
        }, t, ".", "w.yaml");
        var a = w.Routing(0);
        var b = w.Routing(7);
        var differing = 0;
        var bufferA = new int[4];
        var bufferB = new int[4];
        for (var s = 0; s < 20; s++)
        {
            for (var l = 0; l < 32; l++)
            {
                a.Next(s, l, bufferA);
                b.Next(s, l, bufferB);
                differing += bufferA.SequenceEqual(bufferB) ? 0 : 1;
            }
        }
        Assert.True(differing > 600, $"only {differing} of 640 visits differ between the two engines");
        for (var layer = 0; layer < 32; layer += 5)
        {
            var fa = Frequencies(w.Routing(1), layer, 64, 1500, layers: 32, width: 4);
            var fb = Frequencies(w.Routing(2), layer, 64, 1500, layers: 32, width: 4);
            Assert.Equal(Array.IndexOf(fa, fa.Max()), Array.IndexOf(fb, fb.Max()));
        }
    }

    [Fact]
    public void Counts_ReproduceMixtralPopularity()
    {
        var counts = ExpertCounts.Load(Path.Combine(RepoFiles.Root, "topologies", "data", "mixtral-8x7b-expert-counts.json"));
        Assert.Equal(32, counts.Length);
        Assert.All(counts, c => Assert.Equal(8, c.Length));
        var r = new SyntheticRouting(32, 8, 2, 1, 1, weights: counts);
        var f = Frequencies(r, 1, 8, 6000, layers: 32);
        // Layer 1's most popular expert (3) has 39596 of ~198,700 selections: about 20%. Draws without replacement
        // flatten it a little; it stays the clear favourite.
        Assert.Equal(3, Array.IndexOf(f, f.Max()));
        Assert.InRange(f[3], 0.16, 0.22);
        // The popularity itself is the counts' share exactly.
        Assert.InRange(new ExpertPopularity(32, 8, 1, weights: counts).Of(1, 3), 0.199, 0.2);
    }

    [Theory]
    [InlineData("max-min")]
    [InlineData("fifo")]
    public void Trace_StepLines_AddTheirOutsideTimeToEachStep_AfterItsLastLayer(string sharing)
    {
        var header = """{"kind":"header","model":{"architecture":"mixtral","vocab_size":256,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"num_local_experts":8,"num_experts_per_tok":2,"dtype":"BF16"},"prompt_tokens":1,"policy":"lru","prefetch":"none","slots":4,"transport":"shm"}""";
        var plain = new List<string> { header };
        var stepped = new List<string> { header };
        for (var s = 0; s <= 5; s++)
        {
            foreach (var layer in new[] { 0, 1 })
            {
                var route = $$"""{"kind":"route","step":{{s}},"layer":{{layer}},"positions":[{{s}}],"experts":[[{{(s + layer) % 8}},{{(s + 3) % 8}}]],"weights":[[0.5,0.5]],"compute_ns":{{1000 * (layer + 1)}},"stall_ns":0}""";
                plain.Add(route);
                stepped.Add(route);
            }
            stepped.Add($$"""{"kind":"step","step":{{s}},"outside_ns":{{(s == 0 ? 5000 : 700 + s)}}}""");
        }
        var a = Path.GetTempFileName();
        var b = Path.GetTempFileName();
        File.WriteAllLines(a, plain);
        File.WriteAllLines(b, stepped);
        try
        {
            Assert.Equal(0, RoutingTrace.Load(a).OutsideNs(3));
            Assert.Equal(703, RoutingTrace.Load(b).OutsideNs(3));
            var t = Fabric.Sim.Topology.TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "loopback.yaml"));
            Fabric.Sim.Run.EngineResult Run(string path) => Fabric.Sim.Run.SimRunner.Run(t, WorkloadLoader.Resolve(new WorkloadDocument
            {
                Engines = [new EnginePlacementDocument { Gpu = "host" }],
                Pool = ["pool_shm"],
                Sharing = sharing,
                Routing = new RoutingDocument { Kind = "trace", Trace = path },
            }, t, ".", "w.yaml")).Engines.Single();
            var without = Run(a);
            var with = Run(b);
            // No fetch is in flight across a step boundary (no prefetch), so each step is longer by exactly its own outside time.
            Assert.Equal(without.PrefillNs + 5000, with.PrefillNs);
            Assert.Equal(5, with.StepNs.Count);
            for (var s = 0; s < 5; s++)
                Assert.Equal(without.StepNs[s] + 700 + s + 1, with.StepNs[s]);
            Assert.Equal(without.StallNs, with.StallNs);
            Assert.Equal(without.ComputeNs + 5000 + (5 * 700) + 15, with.ComputeNs);
        }
        finally
        {
            File.Delete(a);
            File.Delete(b);
        }
    }

    [Fact]
    public void Trace_ReplaysRecordedExpertsAndComputeTimes()
    {
        var path = Path.GetTempFileName();
        var lines = new List<string>
        {
            """{"kind":"header","model":{"architecture":"mixtral","vocab_size":256,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"num_local_experts":8,"num_experts_per_tok":2,"dtype":"BF16"},"prompt_tokens":3,"policy":"lru","prefetch":"none","slots":4,"transport":"shm"}""",
            """{"kind":"route","step":0,"layer":0,"positions":[0,1,2],"experts":[[1,6],[2,3],[1,2]],"weights":[[0.6,0.4],[0.5,0.5],[0.7,0.3]],"compute_ns":9000,"stall_ns":100}""",
            """{"kind":"route","step":0,"layer":1,"positions":[0,1,2],"experts":[[0,7],[0,1],[4,5]],"weights":[[0.6,0.4],[0.5,0.5],[0.7,0.3]],"compute_ns":8000,"stall_ns":0}""",
        };
        for (var s = 1; s <= 5; s++)
        {
            lines.Add($$"""{"kind":"route","step":{{s}},"layer":0,"positions":[{{2 + s}}],"experts":[[{{s % 8}},{{(s + 1) % 8}}]],"weights":[[0.5,0.5]],"compute_ns":1000,"stall_ns":50}""");
            lines.Add($$"""{"kind":"route","step":{{s}},"layer":1,"positions":[{{2 + s}}],"experts":[[{{(s + 3) % 8}},{{(s + 5) % 8}}]],"weights":[[0.5,0.5]],"compute_ns":2000,"stall_ns":0}""");
        }
        File.WriteAllLines(path, lines);
        try
        {
            var trace = RoutingTrace.Load(path);
            Assert.Equal(6, trace.Steps);
            Assert.Equal(2, trace.Model.NumHiddenLayers);
            Assert.Equal(100 + (5 * 50), trace.TotalStallNs);
            var t = Fabric.Sim.Topology.TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "loopback.yaml"));
            var w = WorkloadLoader.Resolve(new WorkloadDocument
            {
                Engines = [new EnginePlacementDocument { Gpu = "host" }],
                Pool = ["pool_shm"],
                Routing = new RoutingDocument { Kind = "trace", Trace = path },
            }, t, ".", "w.yaml");
            Assert.Equal(4, w.Slots);
            Assert.True(w.FirstStepIsPrefill);
            var r = Fabric.Sim.Run.SimRunner.Run(t, w);
            var e = r.Engines.Single();
            Assert.Equal(5, e.Tokens);
            Assert.Equal(9000 + 8000 + (5 * 3000), e.ComputeNs);
            Assert.True(e.PrefillNs >= 17000);
            var bad = Path.GetTempFileName();
            File.WriteAllLines(bad, [lines[0], """{"kind":"route","step":0}"""]);
            Assert.StartsWith($"Line 2 of '{bad}' is not a route record", Assert.Throws<Fabric.Sim.Topology.TopologyException>(() => RoutingTrace.Load(bad)).Message);
            File.Delete(bad);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
