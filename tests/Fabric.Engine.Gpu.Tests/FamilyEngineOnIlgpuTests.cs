using Fabric.Engine.Device;
using Fabric.Engine.Device.Cpu;
using Fabric.Engine.Runtime;
using Fabric.Engine.Sources;
using Fabric.Model;

namespace Fabric.Engine.Gpu.Tests;

/// <summary>
/// Every family's tiny preset (and OLMoE with clip_qkv + GQA, DeepSeek-V2 with q_lora_rank + group-limited routing)
/// through the engine on the ILGPU device: logits within 1e-3 of the engine on the CPU device (which the engine tests
/// hold to the fp64 reference), and the same greedy tokens with a quarter of the routed experts resident.
/// </summary>
public sealed class FamilyEngineOnIlgpuTests
{
    private static readonly int[] Prompt = [1, 17, 42, 99, 3, 250, 7, 64, 128, 5];

    public static TheoryData<string> Variants => ["qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "olmoe+clip+gqa", "deepseek_v2+q_lora+group_limited"];

    private static ModelConfig Config(string variant)
    {
        var c = ModelPresets.Get("tiny", TensorDtype.BF16, variant.Split('+')[0]);
        return variant switch
        {
            "olmoe+clip+gqa" => c with { ClipQkv = 0.8, NumKeyValueHeads = c.NumAttentionHeads / 2 },
            "deepseek_v2+q_lora+group_limited" => c with { QLoraRank = 24, TopkMethod = "group_limited_greedy", NGroup = 4, TopkGroup = 2, RoutedScalingFactor = 2.0 },
            _ => c,
        };
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Logits_MatchTheCpuDevice_AndQuarterResidentTokensAreTheSame(string variant)
    {
        var directory = Path.Combine(Path.GetTempPath(), "fabric-gpu-family-" + Guid.NewGuid().ToString("N")[..12]);
        ModelGenerator.Write(directory, Config(variant), seed: 11, routerSkew: 1.0);
        try
        {
            await using (var cpu = await EngineAsync(directory, (budget, _) => new CpuDevice(budget, threads: 1)))
            await using (var gpu = await EngineAsync(directory, (budget, scratch) => IlgpuDevice.Open("ilgpu-cpu", budget, scratch)))
            {
                var expected = (await cpu.ForwardAsync(Prompt, 0, 0, 0)).ToArray();
                var actual = await gpu.ForwardAsync(Prompt, 0, 0, 0);
                AssertClose(expected, actual, $"{variant} prefill");
                int next = Sampler.ArgMax(expected);
                expected = (await cpu.ForwardAsync(new[] { next }, Prompt.Length, 0, 1)).ToArray();
                actual = await gpu.ForwardAsync(new[] { next }, Prompt.Length, 0, 1);
                AssertClose(expected, actual, $"{variant} decode");
            }

            var sampler = new Sampler();
            await using var resident = await EngineAsync(directory, (budget, _) => new CpuDevice(budget, threads: 1));
            var tokens = await Generator.GenerateAsync(resident, Prompt, 6, sampler);
            var config = resident.Config;
            var quarter = Math.Max(config.NumExpertsPerTok, config.TotalExperts / 4);
            await using var paged = await EngineAsync(directory, (budget, scratch) => IlgpuDevice.Open("ilgpu-cpu", budget, scratch), quarter);
            Assert.Equal(tokens.Tokens, (await Generator.GenerateAsync(paged, Prompt, 6, sampler)).Tokens);
            Assert.True(paged.Pager.Stats.Misses > 0, "experts were paged in");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<MoeEngine> EngineAsync(string directory, Func<long, long, IComputeDevice> open, int slots = 0)
    {
        var source = new CheckpointSource(directory);
        var options = new EngineOptions { MaxSeqLen = 64, MaxSlots = slots, Prefetch = slots > 0 ? "next-layer" : "none" };
        long budget = MemoryPlan.BytesForSlots(source.Config, DenseWeights.DeviceBytes(source), source.ExpertLayout, options, slots == 0 ? source.Config.TotalExperts : slots);
        long scratch = IlgpuDevice.DefaultScratchBytes(budget);
        return await MoeEngine.CreateAsync(open(budget + scratch, scratch), source, options);
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        double scale = expected.Max(v => Math.Abs((double)v));
        double worst = expected.Select((e, i) => Math.Abs(e - (double)actual[i])).Max();
        Assert.True(worst <= 1e-3 * scale, $"{what}: largest difference {worst:E3} against logits of magnitude {scale:F3}");
    }
}
