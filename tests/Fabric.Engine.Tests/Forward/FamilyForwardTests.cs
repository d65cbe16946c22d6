using Fabric.Engine.Device.Cpu;
using Fabric.Engine.Runtime;
using Fabric.Engine.Sources;
using Fabric.Engine.Tests.Runtime;
using Fabric.Model;

namespace Fabric.Engine.Tests.Forward;

/// <summary>
/// Every family's tiny preset (and the config paths released checkpoints leave out) against
/// <see cref="FamilyReferenceModel"/>: logits within 1e-3 relative in F32 and BF16, 12 greedy tokens identical all
/// resident and with a quarter of the routed experts resident, paged from a pool over tcp.
/// </summary>
public sealed class FamilyForwardTests
{
    private const int NewTokens = 12;
    private static readonly int[] Prompt = [1, 17, 42, 99, 3, 250, 7, 64, 128, 5];

    /// <summary>The model variants: each family's preset as released, then the paths released checkpoints do not use.</summary>
    public static TheoryData<string> Variants => ["mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "qwen2_moe+norm+mlp_only", "olmoe+clip+gqa", "deepseek_v2+q_lora+group_limited"];

    internal static ModelConfig Config(string variant, TensorDtype dtype)
    {
        var family = variant.Split('+')[0];
        var c = ModelPresets.Get("tiny", dtype, family);
        return variant switch
        {
            "qwen2_moe+norm+mlp_only" => c with { NormTopKProb = true, MlpOnlyLayers = [1], DecoderSparseStep = 1 },
            "olmoe+clip+gqa" => c with { ClipQkv = 0.8, NumKeyValueHeads = c.NumAttentionHeads / 2 },
            "deepseek_v2+q_lora+group_limited" => c with
            {
                QLoraRank = 24,
                TopkMethod = "group_limited_greedy",
                NGroup = 4,
                TopkGroup = 2,
                RoutedScalingFactor = 2.0,
            },
            _ => c,
        };
    }

    private static string Write(string variant, TensorDtype dtype)
    {
        var directory = Path.Combine(Path.GetTempPath(), "fabric-family-" + Guid.NewGuid().ToString("N")[..12]);
        ModelGenerator.Write(directory, Config(variant, dtype), seed: 11, routerSkew: 1.0, shards: 2);
        return directory;
    }

    private static async Task<MoeEngine> EngineAsync(IWeightSource source, int slots)
    {
        var options = new EngineOptions { MaxSeqLen = 64, MaxSlots = slots, Policy = "lru", Prefetch = slots > 0 ? "next-layer" : "none" };
        var budget = MemoryPlan.BytesForSlots(source.Config, DenseWeights.DeviceBytes(source), source.ExpertLayout, options, slots == 0 ? source.Config.TotalExperts : slots);
        return await MoeEngine.CreateAsync(new CpuDevice(budget), source, options);
    }

    private static void AssertClose(double[] expected, float[] actual, string what)
    {
        var scale = expected.Max(Math.Abs);
        var worst = expected.Select((e, i) => Math.Abs(e - actual[i])).Max();
        Assert.True(worst <= 1e-3 * scale, $"{what}: largest difference {worst:E3} against logits of magnitude {scale:F3} (relative {worst / scale:E3})");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Logits_MatchTheFp64Reference_InF32AndBf16(string variant)
    {
        foreach (var dtype in new[] { TensorDtype.F32, TensorDtype.BF16 })
        {
            var directory = Write(variant, dtype);
            try
            {
                var reference = new FamilyReferenceModel(directory);
                await using var engine = await EngineAsync(new CheckpointSource(directory), 0);
                var logits = await engine.ForwardAsync(Prompt, 0, 0, 0);
                AssertClose(reference.Logits(Prompt)[^1], logits, $"{variant} {dtype} prefill");
                var sequence = Prompt.ToList();
                for (var step = 1; step <= 2; step++)
                {
                    sequence.Add(Sampler.ArgMax(logits));
                    logits = await engine.ForwardAsync(new[] { sequence[^1] }, sequence.Count - 1, 0, step);
                    AssertClose(reference.Logits([.. sequence])[^1], logits, $"{variant} {dtype} decode step {step}");
                }
            }
            finally
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task GreedyTokens_AreTheReferences_AllResidentAndWithAQuarterPagedOverTcp(string variant)
    {
        var directory = Write(variant, TensorDtype.BF16);
        try
        {
            var expected = new FamilyReferenceModel(directory).Greedy(Prompt, NewTokens);
            await using (var resident = await EngineAsync(new CheckpointSource(directory), 0))
                Assert.Equal(expected, (await Generator.GenerateAsync(resident, Prompt, NewTokens, new Sampler())).Tokens);

            await using var pool = await InProcessPool.StartAsync(directory);
            var source = await PoolSource.ConnectAsync([pool.Endpoint], null);
            var quarter = Math.Max(source.Config.NumExpertsPerTok, source.Config.TotalExperts / 4);
            await using var paged = await EngineAsync(source, quarter);
            Assert.Equal(quarter, paged.Plan.Slots);
            Assert.Equal(expected, (await Generator.GenerateAsync(paged, Prompt, NewTokens, new Sampler())).Tokens);
            Assert.True(paged.Counters.BytesFetched > 0);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
