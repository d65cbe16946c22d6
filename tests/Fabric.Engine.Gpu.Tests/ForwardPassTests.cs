using Fabric.Engine.Device;
using Fabric.Engine.Device.Cpu;
using Fabric.Engine.Sources;
using Fabric.Model;

namespace Fabric.Engine.Gpu.Tests;

/// <summary>
/// The whole Mixtral forward pass of the generated tiny model in F16 and F32 (BF16 runs through the engine itself in
/// <see cref="EngineOnIlgpuTests"/>): prefill of a prompt, then decode steps, on the
/// ILGPU device against the CPU device: logits agree to 1e-3 relative to max(1, |logit|) (FP32 accumulation in a
/// different order on both sides), and the greedy tokens are the same.
/// </summary>
public sealed class ForwardPassTests : IDisposable
{
    private const long Budget = 64L << 20;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "fabric-gpu-test-" + Guid.NewGuid().ToString("N")[..12]);

    public static TheoryData<string, TensorDtype> Cases
    {
        get
        {
            var data = new TheoryData<string, TensorDtype>();
            foreach (var dtype in new[] { TensorDtype.F16, TensorDtype.F32 })
            {
                data.Add("ilgpu-cpu", dtype);
                if (Accelerators.CudaAbsence is null)
                    data.Add("cuda:0", dtype);
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task TinyModel_PrefillAndDecode_MatchesTheCpuDevice(string device, TensorDtype dtype)
    {
        ModelGenerator.Write(_directory, ModelPresets.Get("tiny", dtype), seed: 7, routerSkew: 1.0);
        await using var source = new CheckpointSource(_directory);
        using var cpu = new CpuDevice(Budget, threads: 1);
        using var gpu = IlgpuDevice.Open(device, Budget);
        using var expected = await DeviceForward.LoadAsync(cpu, source, maxRows: 8, maxSeqLen: 32);
        using var actual = await DeviceForward.LoadAsync(gpu, source, maxRows: 8, maxSeqLen: 32);
        int vocab = source.Config.VocabSize;

        int[] prompt = [1, 17, 42, 99, 3, 250];
        int[] positions = Enumerable.Range(0, prompt.Length).ToArray();
        for (int step = 0; step < 4; step++)
        {
            var want = expected.Step(prompt, positions);
            var got = actual.Step(prompt, positions);
            Reference.AssertClose(want, got, 1e-3, $"{device} {dtype} step {step} logits");
            int next = ArgMax(want.AsSpan((prompt.Length - 1) * vocab, vocab));
            Assert.Equal(next, ArgMax(got.AsSpan((prompt.Length - 1) * vocab, vocab)));
            positions = [positions[^1] + 1];
            prompt = [next];
        }
        Assert.True(gpu.Memory.PeakBytes <= Budget);
    }

    [Fact]
    public void IlgpuDevice_OverBudget_SaysHowMuchIsNeeded()
    {
        using var gpu = IlgpuDevice.Open("ilgpu-cpu", 1L << 20);
        using var first = gpu.Allocate(512 << 10, "dense weights");
        var error = Assert.Throws<InsufficientDeviceMemoryException>(() => gpu.Allocate(512 << 10, "KV cache"));
        Assert.Contains("KV cache", error.Message, StringComparison.Ordinal);
        Assert.True(error.RequiredBytes > gpu.Memory.CapacityBytes);
        first.Dispose();
        using var again = gpu.Allocate(512 << 10, "KV cache");
        Assert.Equal(again.Bytes + gpu.Memory.UsedBytes - again.Bytes, gpu.Memory.UsedBytes);
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best])
                best = i;
        return best;
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }
}
