using System.Diagnostics;
using System.Text.Json;
using Fabric.Common.Native;

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
    public async Task Generate_WithAFifoAsTheFirstPool_FailsOverToTheLiveTcpPool_AndFinishes()
    {
        var fifo = Path.Combine(_model.Directory, $"pool-{Guid.NewGuid():N}.fifo");
        Assert.Equal(0, LibC.Mkfifo(fifo, 0x1B6));
        await using var pool = await PoolProcess.StartAsync($"serve --model \"{_model.ModelDirectory}\" --listen tcp://127.0.0.1:0 --tokens \"{_model.TokensFile}\"", endpoints: 1);

        var run = await EngineAsync($"generate --pool shm://{fifo} --pool {pool.Endpoint("tcp")} --token alice:wonderland --prompt-ids 5,9,13 --max-new-tokens 4 --slots 4");

        Assert.True(run.Code == 0, run.Stderr);
        Assert.Equal(4, run.Stdout.Split('\n')[0].Trim().Split(',').Length);
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
    [InlineData("--max-new-tokens 2147483647", "fabric-engine: The prompt (2 tokens) and --max-new-tokens 2147483647 need 2147483648 positions, more than --max-seq-len 512.")]
    [InlineData("--device-memory 99999999999999999999", "fabric-engine: --device-memory: '99999999999999999999' is larger than any size Fabric can hold.")]
    public async Task Generate_OptionOutOfRange_IsOneSentenceAndExit2(string option, string expected) =>
        ChildProgram.AssertRefused(await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt-ids 1,2 {option}"), expected);

    [Theory]
    [InlineData("--max-seq-len 2147483647", "fabric-engine: --max-seq-len 2147483647 × --max-batch 1 = 2147483647 positions need a KV cache of 2 TiB (1024 bytes each), more than the ")]
    [InlineData("--max-batch 100000 --max-seq-len 10000", "fabric-engine: --max-seq-len 10000 × --max-batch 100000 = 1000000000 positions need a KV cache of 953.67 GiB (1024 bytes each), more than the ")]
    public async Task Generate_KvCacheLargerThanTheMachine_IsRefusedBeforeAllocating_NamingTheOptionsAndTheLimit(string option, string start)
    {
        var run = await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt-ids 1,2 {option}");
        Assert.Equal(2, run.Code);
        Assert.Equal("", run.Stdout);
        Assert.StartsWith(start, run.Stderr, StringComparison.Ordinal);
        Assert.EndsWith(" positions fit.", run.Stderr.Trim(), StringComparison.Ordinal);
        Assert.Single(run.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Generate_PromptFileThatIsNotText_NamesTheFileAndNeverEchoesItsBytes()
    {
        var binary = Path.Combine(_model.Directory, "prompt.bin");
        File.WriteAllBytes(binary, [0x00, 0x01, 0xFF, 0xFE, 0x80, 0x07, 0x1B, (byte)'[', (byte)'2', (byte)'J']);
        ChildProgram.AssertRefused(await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt-file \"{binary}\""),
            $"fabric-engine: {binary} is not a list of token ids: it is not UTF-8 text.");

        var control = Path.Combine(_model.Directory, "prompt.nul");
        File.WriteAllBytes(control, [(byte)'1', 0x00, 0x1B, (byte)'[', (byte)'2', (byte)'J']);
        ChildProgram.AssertRefused(await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt-file \"{control}\""),
            $"fabric-engine: {control} is not a list of token ids: it holds control characters, so it is not text.");

        var words = Path.Combine(_model.Directory, "prompt.txt");
        File.WriteAllText(words, "1,2\n" + new string('x', 5000) + "\n");
        ChildProgram.AssertRefused(await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt-file \"{words}\""),
            $"fabric-engine: {words} line 2: '{new string('x', 20)}…' is not a token id (a non-negative integer).");
    }

    [Fact]
    public async Task Generate_WhenThePoolDiesAfterSomeTokens_EndsTheTokenLineBeforeTheError()
    {
        var pool = await PoolProcess.StartAsync($"serve --model \"{_model.ModelDirectory}\" --listen tcp://127.0.0.1:0 --tokens \"{_model.TokensFile}\"", endpoints: 1);
        var info = new ProcessStartInfo("dotnet", $"\"{Path.Combine(AppContext.BaseDirectory, "fabric-engine.dll")}\" generate --pool {pool.Endpoint("tcp")} --token alice:wonderland --prompt-ids 1,2 --slots 2 --max-new-tokens 500")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var engine = Process.Start(info)!;
        var stderr = engine.StandardError.ReadToEndAsync();
        var first = new char[1];
        Assert.Equal(1, await engine.StandardOutput.ReadAsync(first));
        await pool.DisposeAsync();
        var stdout = first[0] + await engine.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await engine.WaitForExitAsync(timeout.Token);

        Assert.Equal(2, engine.ExitCode);
        Assert.Matches(@"^\d+(,\d+)*\n$", stdout);
        var error = await stderr;
        Assert.StartsWith("fabric-engine: ", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
    }
}
