using System.Text.Json;

namespace Fabric.EndToEnd.Tests;

/// <summary>fabric-engine generate as a child process against a real fabric-pool child process, over tcp and shm.</summary>
public sealed class EngineEndToEndTests : IClassFixture<PoolModel>
{
    private readonly PoolModel _model;

    public EngineEndToEndTests(PoolModel model) => _model = model;

    private static Task<(int Code, string Stdout, string Stderr)> EngineAsync(string arguments) =>
        ChildProgram.RunAsync("fabric-engine", arguments);

    [Fact]
    public async Task Generate_PagingFromAPoolOverTcpAndShm_PrintsTheAllResidentTokens_AndWritesStatsAndTrace()
    {
        const string Prompt = "--prompt-ids 5,9,13,200,7 --max-new-tokens 12";
        var local = await EngineAsync($"generate --model \"{_model.ModelDirectory}\" {Prompt}");
        Assert.True(local.Code == 0, local.Stderr);
        var expected = local.Stdout.Split('\n')[0].Trim();
        Assert.Equal(12, expected.Split(',').Length);

        var shm = _model.NewShmPath();
        await using var pool = await PoolProcess.StartAsync($"serve --model \"{_model.ModelDirectory}\" --listen tcp://127.0.0.1:0 --shm {shm} --tokens \"{_model.TokensFile}\"", endpoints: 2);
        foreach (var scheme in new[] { "tcp", "shm" })
        {
            var stats = Path.Combine(_model.Directory, $"stats-{scheme}.json");
            var trace = Path.Combine(_model.Directory, $"trace-{scheme}.jsonl");
            var paged = await EngineAsync($"generate --pool {pool.Endpoint(scheme)} --token alice:wonderland {Prompt} --slots 4 --policy activation --prefetch next-layer --stats-json \"{stats}\" --trace-out \"{trace}\"");
            Assert.True(paged.Code == 0, paged.Stderr);
            Assert.Equal(expected, paged.Stdout.Split('\n')[0].Trim());
            Assert.Contains("hit rate", paged.Stdout);
            using var json = JsonDocument.Parse(File.ReadAllText(stats));
            Assert.Equal(4, json.RootElement.GetProperty("slots").GetInt32());
            Assert.True(json.RootElement.GetProperty("bytes_fetched").GetInt64() > 0);
            Assert.Equal(scheme, json.RootElement.GetProperty("source").GetString());
            var lines = File.ReadAllLines(trace);
            Assert.StartsWith("{\"kind\":\"header\"", lines[0]);
            Assert.Equal(1 + (12 * (4 + 1)), lines.Length); // the header, then per step 4 layer visits and a step line
            Assert.Equal(12, lines.Count(l => l.StartsWith("{\"kind\":\"step\"", StringComparison.Ordinal)));

            // Belady replays the trace of the same run.
            var belady = await EngineAsync($"generate --pool {pool.Endpoint(scheme)} --token alice:wonderland {Prompt} --slots 4 --policy belady --belady-trace \"{trace}\"");
            Assert.True(belady.Code == 0, belady.Stderr);
            Assert.Equal(expected, belady.Stdout.Split('\n')[0].Trim());
        }
    }

    [Fact]
    public async Task Generate_WithAWrongTokenOrTooLittleMemory_SaysSoInOneSentence()
    {
        await using var pool = await PoolProcess.StartAsync($"serve --model \"{_model.ModelDirectory}\" --listen tcp://127.0.0.1:0 --tokens \"{_model.TokensFile}\"", endpoints: 1);
        var refused = await EngineAsync($"generate --pool {pool.Endpoint("tcp")} --token alice:wrong --prompt-ids 1,2");
        Assert.Equal(2, refused.Code);
        Assert.Contains("unauthorized", refused.Stderr);
        Assert.DoesNotContain("   at ", refused.Stderr);

        var small = await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt-ids 1,2 --device-memory 64KiB");
        Assert.Equal(2, small.Code);
        Assert.Contains("give at least", small.Stderr);
        Assert.Single(small.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Generate_OnTheIlgpuCpuDevice_RunsWithTheIlgpuBackend()
    {
        var run = await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt-ids 5,9,13 --max-new-tokens 4 --device ilgpu-cpu");
        Assert.True(run.Code == 0, run.Stderr);
        Assert.Equal(4, run.Stdout.Split('\n')[0].Trim().Split(',').Length);
    }

    [Theory]
    [InlineData("--slots -3", "fabric-engine: --slots must be 0 (as many as the budget holds) or more.")]
    [InlineData("--temperature -1", "fabric-engine: --temperature must be 0 (greedy) or a positive number.")]
    [InlineData("--top-p 7", "fabric-engine: --top-p must lie above 0 and at most 1.")]
    [InlineData("--top-p 0", "fabric-engine: --top-p must lie above 0 and at most 1.")]
    [InlineData("--policy belady", "fabric-engine: --policy belady needs the future: record a trace of the same run with --trace-out PATH, then replay it with --belady-trace PATH.")]
    [InlineData("--max-seq-len 2 --max-new-tokens 2", "fabric-engine: The prompt (2 tokens) and --max-new-tokens 2 need 3 positions, more than --max-seq-len 2.")]
    public async Task Generate_OptionOutOfRange_IsOneSentenceAndExit2(string option, string expected) =>
        ChildProgram.AssertRefused(await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt-ids 1,2 {option}"), expected);
}
