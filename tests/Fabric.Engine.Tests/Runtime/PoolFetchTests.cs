using Fabric.Common;
using Fabric.Engine.Runtime;
using Fabric.Engine.Sources;

namespace Fabric.Engine.Tests.Runtime;

public sealed class PoolFetchTests : IClassFixture<TinyModel>
{
    private const int NewTokens = 10;
    private const int Slots = 4;
    private readonly TinyModel _model;

    public PoolFetchTests(TinyModel model) => _model = model;

    private async Task<int[]> ResidentTokensAsync()
    {
        await using var engine = await _model.EngineAsync();
        return (await Generator.GenerateAsync(engine, TinyModel.Prompt, NewTokens, new Sampler())).Tokens;
    }

    /// <summary>Greedy decode driven step by step, calling <paramref name="beforeStep"/> before each decode step.</summary>
    private static async Task<List<int>> DecodeAsync(MoeEngine engine, int steps, Func<int, Task>? beforeStep = null)
    {
        var logits = await engine.ForwardAsync(TinyModel.Prompt, 0, 0, 0);
        var tokens = new List<int> { Sampler.ArgMax(logits) };
        for (var step = 1; step < steps; step++)
        {
            if (beforeStep is not null)
                await beforeStep(step);
            logits = await engine.ForwardAsync(new[] { tokens[^1] }, TinyModel.Prompt.Length + step - 1, 0, step);
            tokens.Add(Sampler.ArgMax(logits));
        }
        return tokens;
    }

    [Fact]
    public async Task PagingFromAPoolOverTcp_GivesTheAllResidentTokens()
    {
        var expected = await ResidentTokensAsync();
        await using var pool = await InProcessPool.StartAsync(_model.Directory);
        var source = await PoolSource.ConnectAsync([pool.Endpoint], null);
        await using var engine = await _model.EngineAsync(Slots, "activation", "next-layer", source: source);
        var tokens = await DecodeAsync(engine, NewTokens);
        Assert.Equal(expected, tokens);
        Assert.Equal("tcp", source.TransportName);
        Assert.True(engine.Counters.BytesFetched > 0);
        Assert.Equal(0, source.Reader.CorruptBlocks);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task APoolThatDiesMidGeneration_FailsOverToTheSecondEndpoint_AndFinishesWithTheSameTokens(bool readIntoHostSlots)
    {
        var expected = await ResidentTokensAsync();
        await using var first = await InProcessPool.StartAsync(_model.Directory);
        await using var second = await InProcessPool.StartAsync(_model.Directory);
        var source = await PoolSource.ConnectAsync([first.Endpoint, second.Endpoint], null);
        await using var engine = await _model.EngineAsync(Slots, "lru", "history", source: source, readIntoHostSlots: readIntoHostSlots);
        var tokens = await DecodeAsync(engine, NewTokens, async step =>
        {
            if (step == 4)
                await first.StopAsync();
        });
        Assert.Equal(expected, tokens);
        Assert.Equal(second.Endpoint, source.Reader.CurrentEndpoint);
        Assert.True(source.Reader.Reconnects >= 1);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ACorruptBlock_IsNeverUsed_TheEngineRefetchesFromAGoodEndpoint(bool readIntoHostSlots)
    {
        var expected = await ResidentTokensAsync();
        await using var bad = await InProcessPool.StartAsync(_model.Directory);
        await using var good = await InProcessPool.StartAsync(_model.Directory);
        for (var l = 0; l < _model.Config.NumHiddenLayers; l++)
        {
            for (var e = 0; e < _model.Config.NumLocalExperts; e++)
                bad.Corrupt(l, e);
        }
        var source = await PoolSource.ConnectAsync([bad.Endpoint, good.Endpoint], null);
        await using var engine = await _model.EngineAsync(Slots, "lfu", "none", source: source, readIntoHostSlots: readIntoHostSlots);
        Assert.Equal(expected, await DecodeAsync(engine, NewTokens));
        Assert.True(source.Reader.CorruptBlocks >= 1);
    }

    [Fact]
    public async Task WithNoPoolLeft_GenerationStopsWithAClearError_AndTheKvCacheIsIntact()
    {
        var expected = await ResidentTokensAsync();
        await using var pool = await InProcessPool.StartAsync(_model.Directory);
        var source = await PoolSource.ConnectAsync([pool.Endpoint], null);
        await using var engine = await _model.EngineAsync(2, "lru", "none", source: source);

        var logits = await engine.ForwardAsync(TinyModel.Prompt, 0, 0, 0);
        var tokens = new List<int> { Sampler.ArgMax(logits) };
        for (var step = 1; step < 4; step++)
        {
            logits = await engine.ForwardAsync(new[] { tokens[^1] }, TinyModel.Prompt.Length + step - 1, 0, step);
            tokens.Add(Sampler.ArgMax(logits));
        }
        await pool.StopAsync();
        var error = await Assert.ThrowsAsync<FabricException>(
            async () => await engine.ForwardAsync(new[] { tokens[^1] }, TinyModel.Prompt.Length + 3, 0, 4));
        Assert.Contains(pool.Endpoint.ToString(), error.Message);
        Assert.StartsWith("Could not fetch expert", error.Message);

        // The pool comes back: the same step, retried, continues from the cached positions to the same tokens.
        await pool.RestartAsync();
        for (var step = 4; step < NewTokens; step++)
        {
            logits = await engine.ForwardAsync(new[] { tokens[^1] }, TinyModel.Prompt.Length + step - 1, 0, step);
            tokens.Add(Sampler.ArgMax(logits));
        }
        Assert.Equal(expected, tokens);
    }
}
