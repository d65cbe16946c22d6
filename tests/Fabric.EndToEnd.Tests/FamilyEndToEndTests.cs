using Fabric.Model;

namespace Fabric.EndToEnd.Tests;

/// <summary>
/// DeepSeek-V2 (MLA, a dense first layer, shared experts) as released — sharded — through a real fabric-pool child
/// process over tcp and a fabric-engine child with a quarter of the routed experts resident; and the refusals of
/// config fields the engine does not implement, as one sentence and exit 2 from both programs.
/// </summary>
public sealed class FamilyEndToEndTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "fabric-e2e-family-" + Guid.NewGuid().ToString("N")[..12]);

    public FamilyEndToEndTests()
    {
        ModelGenerator.Write(Path.Combine(_dir, "model"), ModelPresets.Get("tiny", TensorDtype.BF16, Architectures.DeepseekV2), seed: 21, routerSkew: 1, shards: 3);
        File.WriteAllText(Path.Combine(_dir, "tokens"), "alice:wonderland\n");
    }

    private string Model => Path.Combine(_dir, "model");

    public void Dispose()
    {
        if (Directory.Exists(_dir))
            Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task DeepseekV2Sharded_PagedFromAPoolOverTcp_GivesTheAllResidentTokens()
    {
        const string Prompt = "--prompt-ids 5,9,13,200,7 --max-new-tokens 12";
        var local = await ChildProgram.RunAsync("fabric-engine", $"generate --model \"{Model}\" {Prompt}");
        Assert.True(local.Code == 0, local.Stderr);
        var expected = local.Stdout.Split('\n')[0].Trim();

        await using var pool = await PoolProcess.StartAsync($"serve --model \"{Model}\" --listen tcp://127.0.0.1:0 --tokens \"{Path.Combine(_dir, "tokens")}\"", endpoints: 1);
        var config = Checkpoint.Open(Model).Config;
        var quarter = config.TotalExperts / 4;
        var paged = await ChildProgram.RunAsync("fabric-engine", $"generate --pool {pool.Endpoint("tcp")} --token alice:wonderland {Prompt} --slots {quarter} --policy activation --prefetch next-layer");
        Assert.True(paged.Code == 0, paged.Stderr);
        Assert.Equal(expected, paged.Stdout.Split('\n')[0].Trim());
        Assert.Contains($"{quarter} of {config.TotalExperts} experts in slots", paged.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RopeScalingInConfig_IsOneSentenceAndExit2_FromTheEngineAndThePool()
    {
        var config = Path.Combine(Model, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 40}", StringComparison.Ordinal));
        var sentence = $"{config}: rope_scaling (yarn) is set, and Fabric implements plain RoPE only.";
        ChildProgram.AssertRefused(await ChildProgram.RunAsync("fabric-engine", $"generate --model \"{Model}\" --prompt-ids 1,2"), "fabric-engine: " + sentence);
        ChildProgram.AssertRefused(await PoolProcess.RunAsync($"inspect --model \"{Model}\""), "fabric-pool: " + sentence);
    }
}
