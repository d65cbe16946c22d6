using ILGPU;
using ILGPU.Runtime;

namespace Fabric.Engine.Gpu.Kernels;

/// <summary>The <see cref="FamilyKernelBodies"/> compiled once for one accelerator, launched on a caller's stream.</summary>
public sealed class FamilyKernels
{
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, int> _addBias;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, float> _clamp;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, int, int, ArrayView<float>, int, int, int> _copyColumns;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, int, int> _deinterleave;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, float> _rotate;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, ArrayView<float>, int, int, int, int> _absorb;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, float> _scores;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> _context;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, ArrayView<float>, int, int, int> _values;

    public FamilyKernels(Accelerator accelerator)
    {
        _addBias = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, int>(FamilyKernelBodies.AddBias);
        _clamp = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, float>(FamilyKernelBodies.Clamp);
        _copyColumns = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, int, int, ArrayView<float>, int, int, int>(FamilyKernelBodies.CopyColumns);
        _deinterleave = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(FamilyKernelBodies.Deinterleave);
        _rotate = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, float>(FamilyKernelBodies.RotateFromScratch);
        _absorb = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, ArrayView<float>, int, int, int, int>(FamilyKernelBodies.AbsorbQuery);
        _scores = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, float>(FamilyKernelBodies.LatentScores);
        _context = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(FamilyKernelBodies.LatentContext);
        _values = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, ArrayView<float>, int, int, int>(FamilyKernelBodies.LatentValues);
    }

    /// <summary>x[r, i] += bias[i] over rows of <paramref name="dim"/>.</summary>
    public void AddBias(AcceleratorStream stream, ArrayView<float> x, WeightView bias, int rows, int dim)
    {
        if (rows * dim > 0)
            _addBias(stream, rows * dim, x, bias, dim);
    }

    /// <summary>x[i] = clamp(x[i], −limit, limit) over <paramref name="count"/> floats.</summary>
    public void Clamp(AcceleratorStream stream, ArrayView<float> x, int count, float limit)
    {
        if (count > 0)
            _clamp(stream, count, x, limit);
    }

    /// <summary>A strided copy of <paramref name="width"/> floats per row.</summary>
    public void CopyColumns(AcceleratorStream stream, ArrayView<float> source, int sourceStride, int sourceOffset, ArrayView<float> destination, int destinationStride,
        int destinationOffset, int rows, int width)
    {
        if (rows * width > 0)
            _copyColumns(stream, rows * width, source, sourceStride, sourceOffset, destination, destinationStride, destinationOffset, width);
    }

    /// <summary>DeepSeek's interleaved RoPE in place; scratch holds rows × heads × ropeDim floats.</summary>
    public void RopeInterleaved(AcceleratorStream stream, ArrayView<float> x, ArrayView<float> scratch, ArrayView<int> positions, int rows, int heads, int headStride,
        int offset, int ropeDim, float theta)
    {
        if (rows * heads == 0)
            return;
        _deinterleave(stream, rows * heads * ropeDim, x, scratch, headStride, offset, ropeDim);
        _rotate(stream, rows * heads * (ropeDim / 2), x, scratch, positions, heads, headStride, offset, ropeDim, theta);
    }

    /// <summary>
    /// Latent attention of one query row (q [heads, nope + rope]) over <paramref name="length"/> cached positions
    /// (cache [maxSeq, rank + rope]); scratch holds heads × (2 · rank + stride) floats, stride ≥ length.
    /// </summary>
    public void LatentAttentionRow(AcceleratorStream stream, GpuKernels kernels, ArrayView<float> q, WeightView kvB, ArrayView<float> cache, ArrayView<float> output,
        ArrayView<float> scratch, ArrayView<int> position, int heads, int rank, int nopeDim, int ropeDim, int vDim, int length, int stride)
    {
        var qLatent = scratch.SubView(0, (long)heads * rank);
        var context = scratch.SubView((long)heads * rank, (long)heads * rank);
        var scores = scratch.SubView(2L * heads * rank, (long)heads * stride);
        _absorb(stream, heads * rank, q, kvB, qLatent, rank, nopeDim, ropeDim, vDim);
        _scores(stream, heads * stride, q, qLatent, cache, scores, rank, nopeDim, ropeDim, stride, length, 1f / MathF.Sqrt(nopeDim + ropeDim));
        kernels.CausalSoftmax(stream, scores, position, heads, stride);
        _context(stream, heads * rank, scores, cache, context, rank, ropeDim, stride, length);
        _values(stream, heads * vDim, context, kvB, output, rank, nopeDim, vDim);
    }
}
