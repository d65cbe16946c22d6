using Fabric.Engine.Runtime;
using Fabric.Engine.Serving;

namespace Fabric.Engine.Tests.Serving;

public sealed class BatchInvarianceTests : IClassFixture<TinyModel>
{
    private const int NewTokens = 8;
    private const int MaxSeqLen = 96;
    private const int Chunk = 16;
    private readonly TinyModel _model;

    public BatchInvarianceTests(TinyModel model) => _model = model;

    /// <summary>Eight prompts of mixed lengths (1 to 40 tokens, some longer than a prefill chunk).</summary>
    private static int[][] Prompts()
    {
        var random = new Random(11);
        int[] lengths = [5, 1, 40, 12, 23, 3, 17, 33];
        return [.. lengths.Select(n => Enumerable.Range(0, n).Select(_ => random.Next(0, 256)).ToArray())];
    }

    private async Task<int[][]> AloneAsync(int[][] prompts)
    {
        await using var engine = await _model.EngineAsync(prefillChunk: Chunk, maxSeqLen: MaxSeqLen);
        var result = new int[prompts.Length][];
        for (var i = 0; i < prompts.Length; i++)
            result[i] = (await Generator.GenerateAsync(engine, prompts[i], NewTokens, new Sampler())).Tokens;
        return result;
    }

    private static async Task<int[]> CollectAsync(GenerationRequest request)
    {
        var tokens = new List<int>();
        await foreach (var t in request.Tokens.ReadAllAsync())
            tokens.Add(t);
        return [.. tokens];
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    public async Task GreedyTokens_OfOneToEightConcurrentRequests_WithStaggeredArrivals_EqualEachRequestRunAlone(int slots)
    {
        var prompts = Prompts();
        var expected = await AloneAsync(prompts);
        if (slots > 0)
            Assert.Equal(_model.Config.TotalExperts / 4, slots);
        for (var n = 1; n <= prompts.Length; n++)
        {
            await using var engine = await _model.EngineAsync(slots, prefetch: "next-layer", prefillChunk: Chunk, maxBatch: 8, maxSeqLen: MaxSeqLen);
            await using var scheduler = new BatchScheduler(engine, maxBatch: Math.Min(n, 8), maxWaiting: 8);
            var requests = new GenerationRequest[n];
            var outputs = new Task<int[]>[n];
            for (var i = 0; i < n; i++)
            {
                requests[i] = new GenerationRequest(prompts[i], NewTokens, new Sampler(), [], CancellationToken.None);
                Assert.Equal(AdmissionRefusal.None, scheduler.TryEnqueue(requests[i]));
                outputs[i] = CollectAsync(requests[i]);
                // Staggered: every other request arrives after the previous one has produced its first token.
                if (i % 2 == 1)
                    await requests[i].Tokens.WaitToReadAsync();
            }
            for (var i = 0; i < n; i++)
            {
                var tokens = await outputs[i];
                Assert.True(expected[i].SequenceEqual(tokens),
                    $"{n} concurrent, slots {slots}: request {i} (prompt {prompts[i].Length}) gave [{string.Join(",", tokens)}], alone [{string.Join(",", expected[i])}]");
                Assert.Equal(FinishReason.Length, requests[i].Finish);
            }
            Assert.Equal(0, scheduler.Metrics.KvLanesUsed);
            if (n > 1 && slots > 0)
                Assert.True(engine.Pager.Stats.Uses > 0);
        }
    }

    [Fact]
    public async Task ACancelledRequest_LeavesAtTheNextStepBoundary_AndItsLaneIsFree_WhileTheOthersFinishUnchanged()
    {
        var prompts = Prompts();
        var expected = await AloneAsync(prompts[..2]);
        await using var engine = await _model.EngineAsync(prefillChunk: Chunk, maxBatch: 2, maxSeqLen: MaxSeqLen);
        await using var scheduler = new BatchScheduler(engine, maxBatch: 2, maxWaiting: 0);
        using var cancel = new CancellationTokenSource();
        var doomed = new GenerationRequest(prompts[2], 50, new Sampler(), [], cancel.Token);
        var kept = new GenerationRequest(prompts[0], NewTokens, new Sampler(), [], CancellationToken.None);
        Assert.Equal(AdmissionRefusal.None, scheduler.TryEnqueue(doomed));
        Assert.Equal(AdmissionRefusal.None, scheduler.TryEnqueue(kept));
        Assert.Equal(AdmissionRefusal.QueueFull, scheduler.TryEnqueue(new GenerationRequest(prompts[1], 1, new Sampler(), [], CancellationToken.None)));
        // Cancelled at once: waiting for its first token first would race the scheduler, which on an idle machine can
        // finish all of its tokens before the test's continuation runs.
        await cancel.CancelAsync();
        await CollectAsync(doomed);
        Assert.Equal(FinishReason.Cancelled, doomed.Finish);
        var next = new GenerationRequest(prompts[1], NewTokens, new Sampler(), [], CancellationToken.None);
        Assert.Equal(AdmissionRefusal.None, scheduler.TryEnqueue(next));
        Assert.Equal(expected[0], await CollectAsync(kept));
        Assert.Equal(expected[1], await CollectAsync(next));
        Assert.Equal(0, scheduler.Metrics.KvLanesUsed);
        await scheduler.BeginDrain();
        Assert.Equal(AdmissionRefusal.Draining, scheduler.TryEnqueue(new GenerationRequest(prompts[1], 1, new Sampler(), [], CancellationToken.None)));
    }

    [Fact]
    public async Task Logits_OfASequenceBesideOthers_AreBitIdenticalToItsLogitsAlone()
    {
        var prompts = Prompts();
        float[] alone;
        await using (var engine = await _model.EngineAsync(prefillChunk: Chunk, maxSeqLen: MaxSeqLen))
        {
            await engine.ForwardAsync(prompts[3], 0, 0, 0);
            alone = [.. await engine.ForwardAsync(new[] { 9 }, prompts[3].Length, 0, 1)];
        }
        await using (var engine = await _model.EngineAsync(prefillChunk: Chunk, maxBatch: 3, maxSeqLen: MaxSeqLen))
        {
            await engine.ForwardAsync(prompts[0], 0, 2, 0);
            await engine.ForwardAsync(prompts[3], 0, 1, 0);
            // Row 0: another sequence's decode; rows 1..: this sequence's decode, then a third sequence's prefill chunk.
            int[] tokens = [4, 9, .. prompts[4][..10]];
            BatchSegment[] segments = [new(2, prompts[0].Length, 1, true), new(1, prompts[3].Length, 1, true), new(0, 0, 10, true)];
            var logits = await engine.StepAsync(tokens, segments, 1);
            var vocab = _model.Config.VocabSize;
            var batched = logits.AsSpan(vocab, vocab).ToArray();
            Assert.Equal(alone.Select(BitConverter.SingleToInt32Bits), batched.Select(BitConverter.SingleToInt32Bits));
        }
    }
}
