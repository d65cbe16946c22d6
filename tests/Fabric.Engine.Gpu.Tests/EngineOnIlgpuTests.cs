using Fabric.Engine.Device;
using Fabric.Engine.Device.Cpu;
using Fabric.Engine.Gpu.Memory;
using Fabric.Engine.Runtime;
using Fabric.Engine.Sources;
using Fabric.Model;

namespace Fabric.Engine.Gpu.Tests;

/// <summary>
/// The engine's own <see cref="MoeEngine"/> on the ILGPU device: its logits match the same engine on the CPU device
/// (1e-3 of the largest logit, as the engine's reference test), and with a quarter of the experts resident, paging
/// through <see cref="IlgpuDevice.CopyToSlotAsync"/>, the greedy tokens equal the CPU all-resident run.
/// </summary>
public sealed class EngineOnIlgpuTests : IDisposable
{
    private static readonly int[] Prompt = [1, 17, 42, 99, 3, 250, 7, 64, 128, 5];
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "fabric-gpu-engine-" + Guid.NewGuid().ToString("N")[..12]);

    public EngineOnIlgpuTests() => ModelGenerator.Write(_directory, ModelPresets.Tiny, seed: 7, routerSkew: 1.0);

    public static TheoryData<string> Devices => Accelerators.CudaAbsence is null ? new TheoryData<string> { "ilgpu-cpu", "cuda:0" } : new TheoryData<string> { "ilgpu-cpu" };

    [Theory]
    [MemberData(nameof(Devices))]
    public async Task PrefillAndDecodeLogits_MatchTheEngineOnTheCpuDevice(string device)
    {
        await using var cpu = await EngineAsync((budget, _) => new CpuDevice(budget, threads: 1));
        await using var gpu = await EngineAsync((budget, scratch) => IlgpuDevice.Open(device, budget, scratch));
        Assert.True(gpu.Plan.Slots >= gpu.Config.TotalExperts, "every expert resident");
        var expected = (await cpu.ForwardAsync(Prompt, 0, 0, 0)).ToArray();
        var actual = await gpu.ForwardAsync(Prompt, 0, 0, 0);
        AssertClose(expected, actual, "prefill");
        for (int step = 1; step <= 2; step++)
        {
            int next = Sampler.ArgMax(expected);
            Assert.Equal(next, Sampler.ArgMax(actual));
            expected = (await cpu.ForwardAsync(new[] { next }, Prompt.Length + step - 1, 0, step)).ToArray();
            actual = await gpu.ForwardAsync(new[] { next }, Prompt.Length + step - 1, 0, step);
            AssertClose(expected, actual, $"decode step {step}");
        }
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public async Task QuarterOfExpertsResident_WithPrefetch_GreedyTokensEqualAllResident(string device)
    {
        var sampler = new Sampler();
        await using var cpu = await EngineAsync((budget, _) => new CpuDevice(budget, threads: 1));
        var expected = await Generator.GenerateAsync(cpu, Prompt, 6, sampler);
        await using var gpu = await EngineAsync((budget, scratch) => IlgpuDevice.Open(device, budget, scratch), slots: 8, prefetch: "next-layer");
        var actual = await Generator.GenerateAsync(gpu, Prompt, 6, sampler);
        Assert.Equal(8, gpu.Plan.Slots);
        Assert.Equal(expected.Tokens, actual.Tokens);
        Assert.True(gpu.Pager.Stats.Misses > 0, "experts were paged in");
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public async Task FewerSlotsThanALayerRoutesTo_EveryOverwritingCopyWaitsForTheComputeThatReadTheSlot(string device)
    {
        IlgpuDevice? opened = null;
        var audit = new SlotOrderingAudit();
        await using var gpu = await EngineAsync((budget, scratch) =>
        {
            opened = IlgpuDevice.Open(device, budget, scratch);
            opened.OrderingAudit = audit;
            return opened;
        }, slots: 3);
        var tokens = await Generator.GenerateAsync(gpu, Prompt, 3, new Sampler());

        Assert.Equal(3, tokens.Tokens.Length);
        Assert.True(audit.Overwrites > 0, "slots were reassigned after experts in them had been computed");
        Assert.Empty(audit.Violations);
    }

    private async Task<MoeEngine> EngineAsync(Func<long, long, IComputeDevice> open, int slots = 0, string prefetch = "none")
    {
        var source = new CheckpointSource(_directory);
        var options = new EngineOptions { MaxSeqLen = 64, Prefetch = prefetch, MaxSlots = slots };
        long budget = MemoryPlan.BytesForSlots(source.Config, DenseWeights.DeviceBytes(source), source.ExpertLayout, options,
            slots == 0 ? source.Config.TotalExperts : slots);
        // The ILGPU device keeps its own scratch (attention scores, op parameters) inside the budget too.
        long scratch = IlgpuDevice.DefaultScratchBytes(budget);
        return await MoeEngine.CreateAsync(open(budget + scratch, scratch), source, options);
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        double scale = expected.Max(v => Math.Abs((double)v));
        double worst = expected.Select((e, i) => Math.Abs(e - (double)actual[i])).Max();
        Assert.True(worst <= 1e-3 * scale, $"{what}: largest difference {worst:E3} against logits of magnitude {scale:F3}");
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }
}
