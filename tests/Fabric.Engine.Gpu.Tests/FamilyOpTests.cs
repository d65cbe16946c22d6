using System.Runtime.InteropServices;
using Fabric.Engine.Device;
using Fabric.Engine.Device.Cpu;
using Fabric.Model;

namespace Fabric.Engine.Gpu.Tests;

/// <summary>The ops the model families add (<see cref="IComputeDevice.AddBias"/> … <see cref="IComputeDevice.LatentAttention"/>) on the ILGPU device against the CPU device.</summary>
public sealed class FamilyOpTests
{
    [Fact]
    public void AddBiasClampAndCopyColumns_MatchTheCpuDevice()
    {
        var random = new Random(41);
        var x = Reference.RandomFloats(random, 6 * 24, 2f);
        var bias = Reference.RandomFloats(random, 24);

        float[] Run(IComputeDevice device)
        {
            using var xb = Load(device, x);
            using var weights = device.Allocate(24 * 2, "bias");
            device.Upload(weights, 0, Bf16(bias));
            device.AddBias(xb, 6, new DeviceMatrix(weights, 0, WeightType.BF16, 1, 24));
            device.Clamp(xb, 5 * 24, 1.25f);
            using var packed = device.Allocate(6 * 40 * sizeof(float), "packed");
            device.CopyColumns(xb, 24, 4, packed, 40, 10, 6, 16);
            return [.. Read(device, xb, x.Length), .. Read(device, packed, 6 * 40)];
        }

        using var cpu = new CpuDevice(1 << 20, threads: 1);
        using var gpu = IlgpuDevice.Open("ilgpu-cpu", 1 << 20);
        var expected = Run(cpu);
        Reference.AssertClose(expected, Run(gpu), 1e-6, "bias, clamp, strided copy");
        Assert.Equal(1.25f, expected.Take(5 * 24).Max(Math.Abs));
        Assert.True(expected.Skip(5 * 24).Take(24).Max(Math.Abs) > 1.25f, "the last row is outside the clamped count");
    }

    [Fact]
    public void RopeInterleaved_RotatesTheRopePartOfEveryHead_AsTheCpuDevice()
    {
        const int rows = 3, heads = 2, nope = 4, rope = 6;
        var x = Reference.RandomFloats(new Random(42), rows * heads * (nope + rope));
        int[] positions = [0, 5, 9];

        float[] Run(IComputeDevice device)
        {
            using var xb = Load(device, x);
            device.RopeInterleaved(xb, rows, heads, nope + rope, nope, rope, positions, 10000f);
            return Read(device, xb, x.Length);
        }

        using var cpu = new CpuDevice(1 << 20, threads: 1);
        using var gpu = IlgpuDevice.Open("ilgpu-cpu", 1 << 20);
        var expected = Run(cpu);
        Reference.AssertClose(expected, Run(gpu), 1e-5, "interleaved rope");
        // The nope part is untouched; position 0 only de-interleaves: (x0, x1, x2, x3, x4, x5) → (x0, x2, x4, x1, x3, x5).
        Assert.Equal(x.AsSpan(0, nope).ToArray(), expected.AsSpan(0, nope).ToArray());
        Assert.Equal(new[] { x[4], x[6], x[8], x[5], x[7], x[9] }, expected.AsSpan(nope, rope).ToArray());
    }

    [Fact]
    public void LatentAttention_MatchesTheCpuDevice_AndCachesTheLatentRows()
    {
        const int rows = 5, heads = 3, nope = 4, rope = 2, vDim = 5, rank = 8, maxSeq = 12;
        var shape = new LatentKvCacheShape(2, rank, rope, maxSeq, 2);
        var random = new Random(43);
        var q = Reference.RandomFloats(random, rows * heads * (nope + rope));
        var latent = Reference.RandomFloats(random, rows * (rank + rope));
        var kvB = Reference.RandomFloats(random, heads * (nope + vDim) * rank, 0.5f);
        int[] positions = Enumerable.Range(2, rows).ToArray();

        float[] Run(IComputeDevice device)
        {
            using var qb = Load(device, q);
            using var lb = Load(device, latent);
            using var weights = device.Allocate(kvB.Length * 2, "kv_b_proj");
            device.Upload(weights, 0, Bf16(kvB));
            using var cacheBuffer = device.Allocate(shape.Bytes, "latent cache");
            using var output = device.Allocate(rows * heads * vDim * sizeof(float), "output");
            var cache = new LatentKvCache(cacheBuffer, shape);
            device.LatentAttention(qb, lb, rows, heads, nope, vDim, new DeviceMatrix(weights, 0, WeightType.BF16, heads * (nope + vDim), rank), cache, 1, 1, positions, output);
            var cached = Read(device, cacheBuffer, (int)(shape.Bytes / sizeof(float)));
            Assert.Equal(latent.AsSpan(0, shape.RowFloats).ToArray(), cached.AsSpan((int)shape.Index(1, 1, 2), shape.RowFloats).ToArray());
            Assert.All(cached.AsSpan((int)shape.Index(1, 0, 0), maxSeq * shape.RowFloats).ToArray(), v => Assert.Equal(0f, v));
            return Read(device, output, rows * heads * vDim);
        }

        using var cpu = new CpuDevice(1 << 20, threads: 1);
        using var gpu = IlgpuDevice.Open("ilgpu-cpu", 1 << 20);
        Reference.AssertClose(Run(cpu), Run(gpu), 1e-5, "latent attention");
    }

    private static byte[] Bf16(float[] values)
    {
        var bytes = new byte[values.Length * 2];
        WeightEncoding.Encode(values, TensorDtype.BF16, bytes);
        return bytes;
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
