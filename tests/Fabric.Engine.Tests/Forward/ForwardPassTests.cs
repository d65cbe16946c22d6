using Fabric.Engine.Runtime;

namespace Fabric.Engine.Tests.Forward;

public sealed class ForwardPassTests : IClassFixture<TinyModel>
{
    private readonly TinyModel _model;

    public ForwardPassTests(TinyModel model) => _model = model;

    private static void AssertClose(double[] expected, float[] actual, string what)
    {
        var scale = expected.Max(Math.Abs);
        var worst = expected.Select((e, i) => Math.Abs(e - actual[i])).Max();
        Assert.True(worst <= 1e-3 * scale, $"{what}: largest difference {worst:E3} against logits of magnitude {scale:F3} (relative {worst / scale:E3})");
    }

    [Fact]
    public async Task PrefillAndDecode_MatchTheFp64Reference_Within1e3Relative()
    {
        var reference = new ReferenceModel(_model.Directory);
        var expected = reference.Logits(TinyModel.Prompt);
        await using var engine = await _model.EngineAsync();
        var logits = await engine.ForwardAsync(TinyModel.Prompt, 0, 0, 0);
        AssertClose(expected[^1], logits, "prefill, last position");

        // Two decode steps through the KV cache against a full recompute.
        var sequence = TinyModel.Prompt.ToList();
        for (var step = 1; step <= 2; step++)
        {
            var next = Sampler.ArgMax(logits);
            sequence.Add(next);
            logits = await engine.ForwardAsync(new[] { next }, sequence.Count - 1, 0, step);
            AssertClose(reference.Logits([.. sequence])[^1], logits, $"decode step {step}");
        }
    }

    [Fact]
    public async Task ChunkedPrefill_GivesTheSameLogitsAsOnePass()
    {
        await using var whole = await _model.EngineAsync();
        var a = (await whole.ForwardAsync(TinyModel.Prompt, 0, 0, 0)).ToArray();
        await using var chunked = await _model.EngineAsync(prefillChunk: 3);
        var b = await chunked.ForwardAsync(TinyModel.Prompt, 0, 0, 0);
        AssertClose(a.Select(x => (double)x).ToArray(), b, "chunked prefill");
    }
}
