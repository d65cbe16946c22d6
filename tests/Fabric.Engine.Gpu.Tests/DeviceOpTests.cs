using System.Runtime.InteropServices;
using Fabric.Engine.Device;
using Fabric.Engine.Device.Cpu;

namespace Fabric.Engine.Gpu.Tests;

/// <summary>Single <see cref="IComputeDevice"/> ops on the ILGPU device against the same ops on the CPU device.</summary>
public sealed class DeviceOpTests
{
    [Fact]
    public void Attention_ScratchSmallerThanThePrefill_ChunksRowsAndMatchesTheCpuDevice()
    {
        const int heads = 4, kvHeads = 2, headDim = 8, rows = 10, maxSeq = 16;
        var shape = new KvCacheShape(2, kvHeads, headDim, maxSeq, 2);
        var random = new Random(31);
        var q = Reference.RandomFloats(random, rows * heads * headDim);
        var k = Reference.RandomFloats(random, rows * kvHeads * headDim);
        var v = Reference.RandomFloats(random, rows * kvHeads * headDim);
        int[] positions = Enumerable.Range(3, rows).ToArray();

        float[] Run(IComputeDevice device)
        {
            using var qb = Load(device, q);
            using var kb = Load(device, k);
            using var vb = Load(device, v);
            using var output = device.Allocate(q.Length * sizeof(float), "attention");
            using var cacheBuffer = device.Allocate(shape.Bytes, "KV cache");
            var cache = new KvCache(cacheBuffer, shape);
            device.Attention(qb, kb, vb, rows, heads, cache, layer: 1, sequence: 1, positions, output);
            var result = Read(device, output, q.Length);
            // The cache holds the new rows at their positions, and nothing in the other sequence.
            var cached = Read(device, cacheBuffer, (int)(shape.Bytes / sizeof(float)));
            Assert.Equal(k.AsSpan(0, shape.RowFloats).ToArray(), cached.AsSpan((int)shape.Index(1, 1, false, 3), shape.RowFloats).ToArray());
            Assert.Equal(v.AsSpan((rows - 1) * shape.RowFloats, shape.RowFloats).ToArray(), cached.AsSpan((int)shape.Index(1, 1, true, 12), shape.RowFloats).ToArray());
            Assert.All(cached.AsSpan((int)shape.Index(1, 0, false, 0), 2 * maxSeq * shape.RowFloats).ToArray(), x => Assert.Equal(0f, x));
            return result;
        }

        using var cpu = new CpuDevice(1 << 20, threads: 1);
        // 1 KiB of scratch: 192 score floats, so the 10-row prefill runs in chunks of a few rows.
        using var gpu = IlgpuDevice.Open("ilgpu-cpu", 1 << 20, scratchBytes: 1024);
        Reference.AssertClose(Run(cpu), Run(gpu), 1e-5, "chunked attention");
    }

    [Fact]
    public void Attention_MorePositionsThanTheScratchHolds_IsAClearBudgetError()
    {
        var shape = new KvCacheShape(1, 2, 8, 4096, 1);
        using var gpu = IlgpuDevice.Open("ilgpu-cpu", 1 << 20, scratchBytes: 1024);
        using var q = gpu.Allocate(4 * 8 * sizeof(float), "q");
        using var kv = gpu.Allocate(2 * 8 * sizeof(float), "kv");
        using var cacheBuffer = gpu.Allocate(shape.Bytes, "KV cache");
        var error = Assert.Throws<InsufficientDeviceMemoryException>(() =>
            gpu.Attention(q, kv, kv, 1, 4, new KvCache(cacheBuffer, shape), 0, 0, [4000], q));
        Assert.Contains("4001 positions", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ExpertForwardAndMoeCombine_MatchTheCpuDevice()
    {
        const int hidden = 16, intermediate = 24, tokens = 3, topK = 2;
        var layout = ExpertSlotLayout.Packed(WeightType.BF16, hidden, intermediate, alignment: 256);
        var random = new Random(32);
        var block = new byte[layout.SlotBytes];
        var bf16 = Reference.RandomFloats(random, (int)(layout.SlotBytes / 2), 0.5f).Select(Reference.ToBf16).ToArray();
        MemoryMarshal.AsBytes(bf16.AsSpan()).CopyTo(block);
        var x = Reference.RandomFloats(random, tokens * hidden);
        float[] weights = [0.7f, 0.3f, 0.6f, 0.4f, 0.9f, 0.1f];
        var residual = Reference.RandomFloats(random, tokens * hidden);

        float[] Run(IComputeDevice device)
        {
            using var slots = device.Allocate(2 * layout.SlotBytes, "expert slots");
            device.Upload(slots, layout.SlotBytes, block);
            using var input = Load(device, x);
            using var outputs = device.Allocate(tokens * topK * hidden * sizeof(float), "expert outputs");
            using var target = Load(device, residual);
            var scratch = new ExpertScratch(tokens, device.Allocate(tokens * hidden * 4, "g"), device.Allocate(tokens * intermediate * 4, "gate"),
                device.Allocate(tokens * intermediate * 4, "up"), device.Allocate(tokens * hidden * 4, "o"));
            // Expert 1 serves rank 0 of tokens 0 and 2 and rank 1 of token 1; the other pairs stay zero.
            device.ExpertForward(layout.View(slots, 1), input, [0, 2, 1], outputs, [0, 4, 3], scratch);
            device.MoeCombine(outputs, weights, tokens, topK, hidden, target);
            var result = Read(device, target, residual.Length);
            foreach (var b in new[] { scratch.Gathered, scratch.Gate, scratch.Up, scratch.Output })
                b.Dispose();
            return result;
        }

        using var cpu = new CpuDevice(1 << 20, threads: 1);
        using var gpu = IlgpuDevice.Open("ilgpu-cpu", 1 << 20);
        var expected = Run(cpu);
        Assert.NotEqual(residual, expected);
        Reference.AssertClose(expected, Run(gpu), 1e-5, "expert + combine");
    }

    [Fact]
    public void Registry_KnowsIlgpuCpu_AndCudaFailsInOneSentenceWithoutADevice()
    {
        IlgpuDeviceRegistration.Register();
        using (var device = DeviceRegistry.Create("ilgpu-cpu", 1 << 20))
            Assert.IsType<IlgpuDevice>(device);
        if (Accelerators.CudaAbsence is { } reason)
            Assert.Contains(reason, Assert.Throws<GpuUnavailableException>(() => DeviceRegistry.Create("cuda", 1 << 20)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CopyBetweenBuffers_IsOrderedWithCompute()
    {
        using var gpu = IlgpuDevice.Open("ilgpu-cpu", 1 << 20);
        var values = Reference.RandomFloats(new Random(33), 64);
        using var a = Load(gpu, values);
        using var b = gpu.Allocate(64 * sizeof(float), "b");
        gpu.Add(a, a, 64);
        gpu.Copy(a, 16 * sizeof(float), b, 0, 32 * sizeof(float));
        var copied = Read(gpu, b, 32);
        Assert.Equal(values.Skip(16).Take(32).Select(x => x + x).ToArray(), copied);
    }

    private static DeviceBuffer Load(IComputeDevice device, float[] values)
    {
        var buffer = device.Allocate(values.Length * sizeof(float), "test input");
        device.Upload(buffer, 0, MemoryMarshal.AsBytes(values.AsSpan()));
        return buffer;
    }

    private static float[] Read(IComputeDevice device, DeviceBuffer buffer, int count)
    {
        var values = new float[count];
        device.Download(buffer, 0, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}
