using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Tests;

/// <summary>
/// Replays of next-layer prefetch use the predictions the engine recorded; a trace without them needs a stated
/// accuracy (or is refused in one sentence); an oracle is labelled one. External routing files import into traces.
/// </summary>
public sealed class HonestReplayTests
{
    private const string Header = """{"kind":"header","model":{"architecture":"mixtral","vocab_size":256,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"num_local_experts":8,"num_experts_per_tok":2,"dtype":"BF16"},"prompt_tokens":1,"policy":"lru","prefetch":"next-layer","slots":4,"transport":"shm"}""";

    // Layer 0 routes to {s%4, s%4+4}, layer 1 to {(s+1)%2, (s+1)%2+2} (experts 0-3 only); the recorded prediction
    // (made at layer 0 for layer 1) is given by predicted, or absent.
    private static string WriteTrace(Func<int, int[]>? predicted, int steps = 30)
    {
        var path = Path.GetTempFileName();
        var lines = new List<string> { Header };
        for (var s = 0; s < steps; s++)
        {
            var p0 = predicted is null ? "" : $",\"predicted_next\":[{string.Join(',', predicted(s))}]";
            var p1 = predicted is null ? "" : ",\"predicted_next\":[]";
            lines.Add($$"""{"kind":"route","step":{{s}},"layer":0,"positions":[{{s}}],"experts":[[{{s % 4}},{{s % 4 + 4}}]]{{p0}},"compute_ns":1000,"stall_ns":0}""");
            lines.Add($$"""{"kind":"route","step":{{s}},"layer":1,"positions":[{{s}}],"experts":[[{{(s + 1) % 2}},{{(s + 1) % 2 + 2}}]]{{p1}},"compute_ns":1000,"stall_ns":0}""");
        }
        File.WriteAllLines(path, lines);
        return path;
    }

    private static (Topology.Topology T, Workload W) Load(string trace)
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "loopback.yaml"));
        var w = WorkloadLoader.Resolve(new WorkloadDocument
        {
            Engines = [new EnginePlacementDocument { Gpu = "host" }],
            Pool = ["pool_shm"],
            Slots = 10,
            Prefetch = "next-layer",
            Routing = new RoutingDocument { Kind = "trace", Trace = trace },
        }, t, ".", "w.yaml");
        return (t, w);
    }

    [Fact]
    public void RecordedPredictions_AreWhatNextLayerPrefetchFetches()
    {
        // A predictor that is always wrong (it names experts layer 1 never uses): its prefetches are never used.
        var wrong = WriteTrace(s => [4 + (s % 2), 6 + (s % 2)]);
        var right = WriteTrace(s => [(s + 1) % 2, (s + 1) % 2 + 2]);
        try
        {
            var (t, w) = Load(wrong);
            Assert.True(w.UsesRecordedPredictions);
            Assert.Equal("recorded", w.Predictor);
            var wrongRun = SimRunner.Run(t, w);
            Assert.Equal("recorded", wrongRun.Predictor);
            Assert.True(wrongRun.Engines.Single().Prefetches > 0);
            Assert.Equal(0, wrongRun.Engines.Single().PrefetchPrecision);
            var oracle = SimRunner.Run(t, w with { PredictionAccuracy = 1 });
            Assert.Equal("oracle", oracle.Predictor);
            Assert.True(oracle.Engines.Single().PrefetchPrecision > 0.9);
            var (t2, w2) = Load(right);
            Assert.True(SimRunner.Run(t2, w2).Engines.Single().PrefetchPrecision > 0.9);
        }
        finally
        {
            File.Delete(wrong);
            File.Delete(right);
        }
    }

    [Fact]
    public void TraceWithoutPredictions_NextLayerIsRefusedInOneSentence_UnlessAnAccuracyIsStated()
    {
        var path = WriteTrace(predicted: null);
        try
        {
            var (t, w) = Load(path);
            Assert.False(w.RoutingRecordsPredictions);
            var m = Assert.Throws<TopologyException>(() => SimRunner.Run(t, w)).Message;
            Assert.Contains("records no next-layer predictions", m, StringComparison.Ordinal);
            Assert.Contains("--predictor-accuracy", m, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', m);
            var stated = SimRunner.Run(t, w with { PredictionAccuracy = 0.5 });
            Assert.Equal("accuracy 0.5", stated.Predictor);
            Assert.Equal("", SimRunner.Run(t, w with { Prefetch = "none" }).Predictor);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void PlainAndCsvRoutingFiles_ImportToTheSameTrace()
    {
        var model = SimModels.Mixtral8x7B;
        var plain = Path.GetTempFileName();
        var csv = Path.GetTempFileName();
        var plainLines = new List<string>();
        var csvLines = new List<string> { "token,layer,experts" };
        for (var token = 0; token < 3; token++)
        {
            for (var layer = 0; layer < model.NumHiddenLayers; layer++)
            {
                var (a, b) = ((token + layer) % 8, (token + (2 * layer) + 1) % 8 == (token + layer) % 8 ? (token + layer + 1) % 8 : (token + (2 * layer) + 1) % 8);
                plainLines.Add($"{a} {b}");
                csvLines.Add($"{token},{layer},\"[{a}, {b}]\"");
            }
        }
        File.WriteAllLines(plain, plainLines);
        File.WriteAllLines(csv, csvLines);
        var outA = Path.GetTempFileName();
        var outB = Path.GetTempFileName();
        try
        {
            using (var w = new StreamWriter(outA))
                Assert.Equal((3, 96), ExternalRoutingTrace.Convert(plain, model, w));
            using (var w = new StreamWriter(outB))
                ExternalRoutingTrace.Convert(csv, model, w);
            var a = RoutingTrace.Load(outA);
            var b = RoutingTrace.Load(outB);
            Assert.Equal(3, a.Steps);
            Assert.Equal(0, a.PromptTokens);
            Assert.False(a.HasPredictions);
            Assert.Equal(a.Visits.Select(v => (v.Step, v.Layer, string.Join(',', v.Experts))), b.Visits.Select(v => (v.Step, v.Layer, string.Join(',', v.Experts))));

            File.WriteAllLines(plain, plainLines.Take(40));
            Assert.Contains("does not give every token all 32 layers", Assert.Throws<TopologyException>(() => ExternalRoutingTrace.Convert(plain, model, TextWriter.Null)).Message, StringComparison.Ordinal);
            File.WriteAllLines(plain, ["1 2 3"]);
            Assert.Contains("lists 3 experts", Assert.Throws<TopologyException>(() => ExternalRoutingTrace.Convert(plain, model, TextWriter.Null)).Message, StringComparison.Ordinal);
            File.WriteAllLines(plain, ["1 9"]);
            Assert.Contains("not an expert id from 0 to 7", Assert.Throws<TopologyException>(() => ExternalRoutingTrace.Convert(plain, model, TextWriter.Null)).Message, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var f in new[] { plain, csv, outA, outB })
                File.Delete(f);
        }
    }
}
