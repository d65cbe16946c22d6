using Fabric.Engine.Device;
using Fabric.Engine.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Fabric.Engine.Gpu.Tests;

/// <summary>
/// Every forward-pass kernel against <see cref="Reference"/>, on the CPU accelerator everywhere and on CUDA where
/// present. Tolerances are relative to max(1, |expected|): 1e-5 for FP32 element-wise work and reductions of a few
/// hundred terms (FP32 accumulation against FP64), exact for routing choices.
/// </summary>
public sealed class KernelTests
{
    private const double Tolerance = 1e-5;


    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void Project_EveryWeightTypeAndGemvKernel_MatchesReference(string device)
    {
        const int outDim = 13;
        var accelerator = Accelerators.Get(device).Device.Accelerator;
        var random = new Random(11);
        // inDim 72 at byte offset 0 takes the 8-byte-load kernel for 16-bit weights; 70, or 72 at offset 2, the 2-byte one.
        foreach (var kernels in new[] { Accelerators.Get(device).Kernels, Accelerators.Get(device, GemvKernel.WarpPerRow), Accelerators.Get(device, GemvKernel.RowPerThread) })
        foreach (var type in new[] { WeightType.F32, WeightType.F16, WeightType.BF16 })
            foreach (int tokens in new[] { 1, 3 })
            foreach (var (inDim, offset) in new[] { (70, 0), (72, 0), (72, type == WeightType.F32 ? 4 : 2) })
            {
                var x = Reference.RandomFloats(random, tokens * inDim);
                var (weights, stored) = Store(Reference.RandomFloats(random, outDim * inDim, 0.5f), type);
                using var xBuffer = accelerator.Allocate1D(x);
                using var wBuffer = accelerator.Allocate1D<byte>(stored.Length + offset);
                ArrayView<byte> wView = wBuffer.View.SubView(offset, stored.Length);
                wView.CopyFromCPU(ref stored[0], stored.Length);
                using var yBuffer = accelerator.Allocate1D<float>(tokens * outDim);
                kernels.Project(accelerator.DefaultStream, xBuffer.View, WeightView.Of(wView, type), yBuffer.View, tokens, inDim, outDim);
                accelerator.Synchronize();
                Reference.AssertClose(Reference.Project(x, weights, tokens, inDim, outDim), yBuffer.GetAsArray1D(), 1e-4, $"{type} x{tokens} in {inDim} at +{offset} {kernels.Gemv} blas={kernels.UsesBlas}");
            }
    }

    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void RmsNorm_Bf16Weight_MatchesReference(string device)
    {
        var (gpu, kernels) = Accelerators.Get(device);
        var accelerator = gpu.Accelerator;
        var random = new Random(12);
        const int tokens = 2, dim = 50;
        var x = Reference.RandomFloats(random, tokens * dim, 3f);
        var (w, stored) = Store(Reference.RandomFloats(random, dim), WeightType.BF16);
        using var xBuffer = accelerator.Allocate1D(x);
        using var wBuffer = accelerator.Allocate1D(stored);
        using var yBuffer = accelerator.Allocate1D<float>(x.Length);
        kernels.RmsNorm(accelerator.DefaultStream, xBuffer.View, WeightView.Of(wBuffer.View, WeightType.BF16), yBuffer.View, tokens, dim, 1e-5f);
        accelerator.Synchronize();
        Reference.AssertClose(Reference.RmsNorm(x, w, tokens, dim, 1e-5f), yBuffer.GetAsArray1D(), Tolerance, "rmsnorm");
    }

    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void Rope_RotateHalfAtLargePositions_MatchesReference(string device)
    {
        var (gpu, kernels) = Accelerators.Get(device);
        var accelerator = gpu.Accelerator;
        const int heads = 2, headDim = 8;
        // Up to 128k positions: the angle must be reduced before the GPU's fast sin/cos, which have no range reduction.
        int[] positions = [0, 5, 1000, 32768, 131071];
        var x = Reference.RandomFloats(new Random(13), positions.Length * heads * headDim);
        using var xBuffer = accelerator.Allocate1D(x);
        using var pBuffer = accelerator.Allocate1D(positions);
        kernels.Rope(accelerator.DefaultStream, xBuffer.View, pBuffer.View, positions.Length, heads, headDim, 1e6f);
        accelerator.Synchronize();
        var actual = xBuffer.GetAsArray1D();
        Reference.AssertClose(Reference.Rope(x, positions, heads, headDim, 1e6), actual, Tolerance, "rope");
        Assert.Equal(x.AsSpan(0, heads * headDim).ToArray(), actual.AsSpan(0, heads * headDim).ToArray());
    }

    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void Attention_GroupedQueryCausal_PrefillBlockAndDecode_MatchReference(string device)
    {
        var (gpu, kernels) = Accelerators.Get(device);
        var accelerator = gpu.Accelerator;
        var random = new Random(14);
        const int heads = 4, kvHeads = 2, headDim = 8, cached = 7, stride = 16;
        var keys = Reference.RandomFloats(random, stride * kvHeads * headDim);
        var values = Reference.RandomFloats(random, stride * kvHeads * headDim);
        using var kBuffer = accelerator.Allocate1D(keys);
        using var vBuffer = accelerator.Allocate1D(values);
        foreach (int[] positions in new[] { new[] { 4, 5, 6 }, new[] { cached - 1 }, new[] { 0 } })
        {
            var q = Reference.RandomFloats(random, positions.Length * heads * headDim, 2f);
            using var qBuffer = accelerator.Allocate1D(q);
            using var pBuffer = accelerator.Allocate1D(positions);
            using var scores = accelerator.Allocate1D<float>(positions.Length * heads * stride);
            using var output = accelerator.Allocate1D<float>(q.Length);
            kernels.Attention(accelerator.DefaultStream, qBuffer.View, kBuffer.View, vBuffer.View, output.View, pBuffer.View, scores.View,
                positions.Length, heads, kvHeads, headDim, stride);
            accelerator.Synchronize();
            Reference.AssertClose(Reference.Attention(q, keys, values, positions, heads, kvHeads, headDim), output.GetAsArray1D(), Tolerance,
                $"attention at [{string.Join(',', positions)}]");
        }
    }

    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void RouteTopK_SoftmaxTopTwoRenormalised_MatchesReferenceIncludingTies(string device)
    {
        var (gpu, kernels) = Accelerators.Get(device);
        var accelerator = gpu.Accelerator;
        const int tokens = 5, expertCount = 8, topK = 2;
        var logits = Reference.RandomFloats(new Random(15), tokens * expertCount, 4f);
        logits[3] = logits[6] = 9f;
        var (expectedExperts, expectedWeights) = Reference.Route(logits, tokens, expertCount, topK);
        using var lBuffer = accelerator.Allocate1D(logits);
        using var experts = accelerator.Allocate1D<int>(tokens * topK);
        using var weights = accelerator.Allocate1D<float>(tokens * topK);
        kernels.RouteTopK(accelerator.DefaultStream, lBuffer.View, experts.View, weights.View, tokens, expertCount, topK);
        accelerator.Synchronize();
        Assert.Equal(expectedExperts, experts.GetAsArray1D());
        Assert.Equal([3, 6], experts.GetAsArray1D()[..2]);
        Reference.AssertClose(expectedWeights, weights.GetAsArray1D(), 1e-6, "router weights");
    }

    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void ElementwiseKernels_SiluMulAddGatherScatterEmbed_MatchReference(string device)
    {
        var (gpu, kernels) = Accelerators.Get(device);
        var accelerator = gpu.Accelerator;
        var stream = accelerator.DefaultStream;
        var random = new Random(16);
        const int dim = 6, tokens = 4;
        var gate = Reference.RandomFloats(random, tokens * dim, 4f);
        var up = Reference.RandomFloats(random, tokens * dim);
        using var gBuffer = accelerator.Allocate1D(gate);
        using var uBuffer = accelerator.Allocate1D(up);
        kernels.SiluMul(stream, gBuffer.View, uBuffer.View, gate.Length);
        accelerator.Synchronize();
        Reference.AssertClose(gate.Select((g, i) => Reference.Silu(g) * up[i]).ToArray(), gBuffer.GetAsArray1D(), Tolerance, "silu*mul");

        var residual = Reference.RandomFloats(random, tokens * dim);
        using var rBuffer = accelerator.Allocate1D(residual);
        kernels.Add(stream, rBuffer.View, uBuffer.View, up.Length);
        accelerator.Synchronize();
        Reference.AssertClose(residual.Select((r, i) => r + up[i]).ToArray(), rBuffer.GetAsArray1D(), Tolerance, "add");

        int[] rows = [3, 1];
        float[] scale = [0.25f, 0.75f];
        using var rowsBuffer = accelerator.Allocate1D(rows);
        using var scaleBuffer = accelerator.Allocate1D(scale);
        using var gathered = accelerator.Allocate1D<float>(rows.Length * dim);
        kernels.GatherRows(stream, gathered.View, uBuffer.View, rowsBuffer.View, rows.Length, dim);
        accelerator.Synchronize();
        var expectedGather = rows.SelectMany(r => up.AsSpan(r * dim, dim).ToArray()).ToArray();
        Assert.Equal(expectedGather, gathered.GetAsArray1D());

        var destination = new float[tokens * dim];
        using var dBuffer = accelerator.Allocate1D(destination);
        kernels.ScaledAddRows(stream, dBuffer.View, gathered.View, rowsBuffer.View, scaleBuffer.View, rows.Length, dim);
        accelerator.Synchronize();
        var expectedScatter = new float[tokens * dim];
        for (int r = 0; r < rows.Length; r++)
            for (int d = 0; d < dim; d++)
                expectedScatter[rows[r] * dim + d] += scale[r] * up[rows[r] * dim + d];
        Reference.AssertClose(expectedScatter, dBuffer.GetAsArray1D(), Tolerance, "scaled add rows");

        var table = Reference.RandomFloats(random, 10 * dim);
        var halves = table.Select(v => BitConverter.HalfToUInt16Bits((System.Half)v)).ToArray();
        int[] ids = [9, 0, 4];
        using var tBuffer = accelerator.Allocate1D(halves);
        using var idBuffer = accelerator.Allocate1D(ids);
        using var embedded = accelerator.Allocate1D<float>(ids.Length * dim);
        kernels.Embed(stream, WeightView.Of(((ArrayView<ushort>)tBuffer.View).Cast<byte>(), WeightType.F16), idBuffer.View, embedded.View, ids.Length, dim);
        accelerator.Synchronize();
        var expectedEmbed = ids.SelectMany(id => halves.AsSpan(id * dim, dim).ToArray().Select(h => (float)BitConverter.UInt16BitsToHalf(h))).ToArray();
        Assert.Equal(expectedEmbed, embedded.GetAsArray1D());
    }

    [Fact]
    public void WeightView_MisalignedStart_IsRefused()
    {
        using var buffer = Accelerators.Get("ilgpu-cpu").Device.Accelerator.Allocate1D<byte>(64);
        ArrayView<byte> view = buffer.View;
        Assert.Throws<ArgumentException>(() => WeightView.Of(view.SubView(2, 32), WeightType.F32));
        Assert.Throws<ArgumentException>(() => WeightView.Of(view.SubView(1, 32), WeightType.BF16));
        Assert.Equal(16, WeightView.Of(view.SubView(4, 32), WeightType.BF16).Bits16.Length);
    }

    [Fact]
    public void HalfToSingle_EveryBitPattern_EqualsDotNetHalf()
    {
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)bits);
            float actual = WeightView.HalfToSingle((ushort)bits);
            Assert.True(expected.Equals(actual), $"0x{bits:X4}: expected {expected}, got {actual}");
        }
    }

    [Fact]
    public void Bf16ToSingle_IsTheTopHalfOfTheSingle()
    {
        Assert.Equal(1f, WeightView.Bf16ToSingle(0x3F80));
        Assert.Equal(-2.5f, WeightView.Bf16ToSingle(Reference.ToBf16(-2.5f)));
        Assert.Equal(float.PositiveInfinity, WeightView.Bf16ToSingle(0x7F80));
    }

    /// <summary>Stores <paramref name="values"/> as <paramref name="type"/>; returns the values the device will see and the bytes.</summary>
    private static (float[] Dequantised, byte[] Bytes) Store(float[] values, WeightType type)
    {
        switch (type)
        {
            case WeightType.F32:
                return (values, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
            case WeightType.F16:
                var halves = values.Select(v => BitConverter.HalfToUInt16Bits((System.Half)v)).ToArray();
                return (halves.Select(h => (float)BitConverter.UInt16BitsToHalf(h)).ToArray(),
                    System.Runtime.InteropServices.MemoryMarshal.AsBytes(halves.AsSpan()).ToArray());
            default:
                var bf = values.Select(Reference.ToBf16).ToArray();
                return (bf.Select(Reference.FromBf16).ToArray(), System.Runtime.InteropServices.MemoryMarshal.AsBytes(bf.AsSpan()).ToArray());
        }
    }
}
