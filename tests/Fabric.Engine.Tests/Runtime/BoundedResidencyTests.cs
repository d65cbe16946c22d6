using Fabric.Engine.Paging;
using Fabric.Engine.Runtime;

namespace Fabric.Engine.Tests.Runtime;

public sealed class BoundedResidencyTests : IClassFixture<TinyModel>
{
    private const int NewTokens = 12;
    private readonly TinyModel _model;

    public BoundedResidencyTests(TinyModel model) => _model = model;

    private async Task<(int[] Tokens, MoeEngine Engine)> GenerateAsync(int slots, string policy, string prefetch, IReadOnlyList<ExpertKey>? future = null, string? tracePath = null)
    {
        var engine = await _model.EngineAsync(slots, policy, prefetch, future);
        using var trace = tracePath is null ? null : new RoutingTraceWriter(tracePath);
        engine.Trace = trace;
        trace?.WriteHeader(engine.Config, TinyModel.Prompt.Length, policy, prefetch, engine.Plan.Slots, "local");
        var result = await Generator.GenerateAsync(engine, TinyModel.Prompt, NewTokens, new Sampler());
        engine.Trace = null;
        return (result.Tokens, engine);
    }

    [Fact]
    public async Task GreedyTokens_WithAnyBudgetHoldingTopK_EqualTheAllResidentTokens_ForEveryPolicyAndPrefetch()
    {
        var tracePath = Path.Combine(_model.Directory, "resident.trace.jsonl");
        var (expected, resident) = await GenerateAsync(0, "lru", "none", tracePath: tracePath);
        Assert.Equal(_model.Config.TotalExperts, resident.Plan.Slots);
        Assert.Equal(0, resident.Pager.Stats.Misses);
        await resident.DisposeAsync();
        var future = RoutingTraceReader.ReadAccessSequence(tracePath);

        foreach (var slots in new[] { _model.Config.NumExpertsPerTok, 5, 13 })
        {
            foreach (var policy in EvictionPolicies.Names)
            {
                foreach (var prefetch in Prefetchers.Names)
                {
                    var (tokens, engine) = await GenerateAsync(slots, policy, prefetch, policy == "belady" ? future : null);
                    await using (engine)
                    {
                        Assert.True(expected.SequenceEqual(tokens), $"slots {slots}, {policy}, {prefetch}: [{string.Join(",", tokens)}] differs from [{string.Join(",", expected)}]");
                        var stats = engine.Pager.Stats;
                        Assert.Equal(slots, engine.Plan.Slots);
                        Assert.True(stats.Misses > 0, "a bounded budget must page");
                        Assert.Equal(future.Count, stats.Uses);
                        Assert.True(engine.Counters.BytesFetched >= stats.Misses * _model.Config.ExpertBytes);
                    }
                }
            }
        }
    }

    [Fact]
    public async Task Trace_RecordsThePredictorsChoicesPerLayer_WhetherOrNotTheRunPrefetches()
    {
        var withPrefetch = Path.Combine(_model.Directory, "predicted-next-layer.trace.jsonl");
        var withoutPrefetch = Path.Combine(_model.Directory, "predicted-none.trace.jsonl");
        var (_, prefetching) = await GenerateAsync(13, "lru", "next-layer", tracePath: withPrefetch);
        await using (prefetching)
            Assert.True(prefetching.Pager.Stats.PrefetchesIssued > 0);
        var (_, plain) = await GenerateAsync(13, "lru", "none", tracePath: withoutPrefetch);
        await plain.DisposeAsync();

        static List<(int Layer, int[] Predicted)> Predictions(string path) =>
            [.. File.ReadLines(path).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
                .Where(e => e.GetProperty("kind").GetString() == "route")
                .Select(e => (e.GetProperty("layer").GetInt32(), e.GetProperty("predicted_next").EnumerateArray().Select(x => x.GetInt32()).ToArray()))];
        var a = Predictions(withPrefetch);
        var b = Predictions(withoutPrefetch);
        var lastLayer = _model.Config.NumHiddenLayers - 1;
        Assert.All(a, v => Assert.Equal(v.Layer == lastLayer, v.Predicted.Length == 0));
        Assert.All(a, v => Assert.All(v.Predicted, e => Assert.InRange(e, 0, _model.Config.NumLocalExperts - 1)));
        Assert.Equal(a.Count, b.Count);
        for (var i = 0; i < a.Count; i++)
            Assert.Equal(a[i].Predicted, b[i].Predicted);
    }

    [Fact]
    public async Task Belady_ReplayingTheRecordedTrace_HitsAtLeastAsOftenAsTheOnlinePolicies()
    {
        var tracePath = Path.Combine(_model.Directory, "belady.trace.jsonl");
        var (_, recorder) = await GenerateAsync(6, "lru", "none", tracePath: tracePath);
        var lruHits = recorder.Pager.Stats.Hits;
        await recorder.DisposeAsync();
        var future = RoutingTraceReader.ReadAccessSequence(tracePath);
        var (_, belady) = await GenerateAsync(6, "belady", "none", future);
        await using (belady)
        {
            foreach (var policy in new[] { "lfu", "activation" })
            {
                var (_, online) = await GenerateAsync(6, policy, "none");
                await using (online)
                    Assert.True(belady.Pager.Stats.Hits >= online.Pager.Stats.Hits, $"belady {belady.Pager.Stats.Hits} < {policy} {online.Pager.Stats.Hits}");
            }
            Assert.True(belady.Pager.Stats.Hits >= lruHits);
        }
    }

    [Fact]
    public async Task Trace_HasOneStepLinePerStep_AndTheFetchLogOneEntryPerFetch()
    {
        var tracePath = Path.Combine(_model.Directory, "steps.trace.jsonl");
        var (_, engine) = await GenerateAsync(_model.Config.NumExpertsPerTok, "lru", "none", tracePath: tracePath);
        await using (engine)
        {
            var steps = new List<int>();
            foreach (var line in File.ReadLines(tracePath))
            {
                using var doc = System.Text.Json.JsonDocument.Parse(line);
                if (doc.RootElement.GetProperty("kind").GetString() != "step")
                    continue;
                steps.Add(doc.RootElement.GetProperty("step").GetInt32());
                Assert.True(doc.RootElement.GetProperty("outside_ns").GetInt64() > 0, line);
            }
            Assert.Equal(Enumerable.Range(0, NewTokens), steps);
            var log = engine.Counters.FetchLog;
            Assert.Equal(engine.Counters.Fetches, log.Length);
            Assert.Equal(engine.Counters.FetchNs, log.Sum(f => f.FetchNs));
            Assert.Contains(log, f => f.Step > 0);
            Assert.All(log, f => Assert.True(f.Step is >= 0 and < NewTokens && f.Layer >= 0 && f.Layer < _model.Config.NumHiddenLayers && f.QueuedNs >= 0 && f.FetchNs > 0));
        }
    }

    [Fact]
    public async Task TooSmallABudget_FailsWithTheBytesNeeded()
    {
        var source = new Fabric.Engine.Sources.CheckpointSource(_model.Directory);
        await using var _ = source;
        var options = new EngineOptions { MaxSeqLen = 64 };
        var minimum = MemoryPlan.MinimumBytes(source.Config, DenseWeights.DeviceBytes(source), source.ExpertLayout, options);
        var error = await Assert.ThrowsAsync<Fabric.Engine.Device.InsufficientDeviceMemoryException>(
            () => MoeEngine.CreateAsync(new Fabric.Engine.Device.Cpu.CpuDevice(minimum - 1), source, options));
        Assert.Equal(minimum, error.RequiredBytes);
        Assert.Contains($"({minimum} bytes)", error.Message);
        await using var ok = await MoeEngine.CreateAsync(new Fabric.Engine.Device.Cpu.CpuDevice(minimum), source, options);
        Assert.Equal(source.Config.NumExpertsPerTok, ok.Plan.Slots);
        Assert.True(ok.Device.Memory.PeakBytes <= minimum);
    }
}
