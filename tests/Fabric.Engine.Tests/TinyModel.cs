using Fabric.Engine.Device.Cpu;
using Fabric.Engine.Runtime;
using Fabric.Engine.Sources;
using Fabric.Model;

namespace Fabric.Engine.Tests;

/// <summary>A tiny generated Mixtral checkpoint (skewed router) in a temp directory, shared by a test class.</summary>
public sealed class TinyModel : IDisposable
{
    public TinyModel()
    {
        Directory = Path.Combine(Path.GetTempPath(), "fabric-engine-test-" + Guid.NewGuid().ToString("N")[..12]);
        Config = ModelGenerator.Write(Directory, ModelPresets.Tiny, seed: 7, routerSkew: 1.0);
    }

    public string Directory { get; }

    public ModelConfig Config { get; }

    public static readonly int[] Prompt = [1, 17, 42, 99, 3, 250, 7, 64, 128, 5];

    /// <summary>An engine on the CPU over the local checkpoint with <paramref name="slots"/> slots (0 = all).</summary>
    public async Task<MoeEngine> EngineAsync(int slots = 0, string policy = "lru", string prefetch = "none", IReadOnlyList<Fabric.Engine.Paging.ExpertKey>? future = null,
        int prefillChunk = 64, IWeightSource? source = null, bool readIntoHostSlots = true, int maxBatch = 1, int maxSeqLen = 64)
    {
        source ??= new CheckpointSource(Directory);
        var options = new EngineOptions
        {
            MaxSeqLen = maxSeqLen,
            MaxBatch = maxBatch,
            Policy = policy,
            Prefetch = prefetch,
            MaxSlots = slots,
            FutureAccesses = future,
            PrefillChunk = prefillChunk,
            ReadIntoHostSlots = readIntoHostSlots,
        };
        var budget = MemoryPlan.BytesForSlots(source.Config, DenseWeights.DeviceBytes(source), source.ExpertLayout, options, slots == 0 ? source.Config.TotalExperts : slots);
        return await MoeEngine.CreateAsync(new CpuDevice(budget), source, options);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
