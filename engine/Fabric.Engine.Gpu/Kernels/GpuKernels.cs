using Fabric.Engine.Device;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Fabric.Engine.Gpu.Kernels;

/// <summary>
/// The forward-pass kernels compiled once for one accelerator, launched on a caller's stream. Launches are
/// asynchronous: synchronise the stream (or wait on a marker) before reading results on the host.
/// FP32 projections go to cuBLAS on a CUDA accelerator when it loads; BF16/F16 weights and the CPU accelerator use
/// the warp-per-row GEMV kernel (cuBLAS has no BF16-storage, FP32-accumulate GEMV).
/// </summary>
public sealed class GpuKernels : IDisposable
{
    private readonly Accelerator _accelerator;
    private readonly int _groupSize;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, WeightView, ArrayView<float>, int, int> _gemv;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<ulong>, int, ArrayView<float>, int, int> _gemvQuads;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, ArrayView<float>, int, int> _gemvRowPerThread;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, WeightView, ArrayView<float>, int, float> _rmsNorm;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<int>, int, int> _causalSoftmax;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int> _scores;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int> _values;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<int>, int, int, float> _rope;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>> _siluMul;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>> _add;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> _scaledAddRows;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int> _gatherRows;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int> _scatterRows;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> _moeCombine;
    private readonly Action<AcceleratorStream, Index1D, WeightView, ArrayView<int>, ArrayView<float>, int> _embed;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int> _router;
    private readonly CudaBlas? _blas;

    /// <summary>
    /// Compiles the kernels for <paramref name="accelerator"/> (not owned); <paramref name="useBlas"/> lets FP32 projections
    /// use cuBLAS on CUDA; <paramref name="gemv"/> picks the GEMV kernel (default: a warp per row on a GPU, a thread per
    /// row on the CPU accelerator, whose group barriers cost microseconds each).
    /// </summary>
    public GpuKernels(Accelerator accelerator, bool useBlas = true, GemvKernel? gemv = null)
    {
        _accelerator = accelerator;
        Gemv = gemv ?? (accelerator is CPUAccelerator ? GemvKernel.RowPerThread : GemvKernel.WarpPerRow);
        _gemvRowPerThread = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, ArrayView<float>, int, int>(KernelBodies.GemvRowPerThread);
        _groupSize = accelerator.WarpSize;
        _gemv = accelerator.LoadKernel<ArrayView<float>, WeightView, ArrayView<float>, int, int>(KernelBodies.Gemv);
        _gemvQuads = accelerator.LoadKernel<ArrayView<float>, ArrayView<ulong>, int, ArrayView<float>, int, int>(KernelBodies.GemvQuads);
        _rmsNorm = accelerator.LoadKernel<ArrayView<float>, WeightView, ArrayView<float>, int, float>(KernelBodies.RmsNorm);
        _causalSoftmax = accelerator.LoadKernel<ArrayView<float>, ArrayView<int>, int, int>(KernelBodies.CausalSoftmax);
        _scores = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int>(KernelBodies.AttentionScores);
        _values = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int>(KernelBodies.AttentionValues);
        _rope = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<int>, int, int, float>(KernelBodies.Rope);
        _siluMul = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>>(KernelBodies.SiluMul);
        _add = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>>(KernelBodies.Add);
        _scaledAddRows = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(KernelBodies.ScaledAddRows);
        _gatherRows = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(KernelBodies.GatherRows);
        _scatterRows = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(KernelBodies.ScatterRows);
        _moeCombine = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(KernelBodies.MoeCombine);
        _embed = accelerator.LoadAutoGroupedKernel<Index1D, WeightView, ArrayView<int>, ArrayView<float>, int>(KernelBodies.Embed);
        _router = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>(KernelBodies.RouterTopK);
        if (useBlas && accelerator is CudaAccelerator)
        {
            _blas = CudaBlas.TryCreate(accelerator, out var reason);
            BlasFallbackReason = reason;
        }
    }

    /// <summary>The GEMV kernel BF16/F16 projections (and FP32 ones without cuBLAS) use.</summary>
    public GemvKernel Gemv { get; }

    /// <summary>The accelerator the kernels were compiled for.</summary>
    public Accelerator Accelerator => _accelerator;

    /// <summary>True when FP32 projections run through cuBLAS.</summary>
    public bool UsesBlas => _blas is not null;

    /// <summary>On a CUDA accelerator whose cuBLAS did not load (e.g. only another major version installed), why; else null.</summary>
    public string? BlasFallbackReason { get; }

    /// <summary>y[tokens, outDim] = x[tokens, inDim] · wᵀ with w [outDim, inDim] in its storage type; FP32 accumulation.</summary>
    public void Project(AcceleratorStream stream, ArrayView<float> x, WeightView w, ArrayView<float> y, int tokens, int inDim, int outDim)
    {
        if (tokens <= 0)
            return;
        if (_blas is not null && w.Kind == (int)WeightType.F32)
        {
            _blas.Project(stream, x, w.Single, y, tokens, inDim, outDim);
            return;
        }
        if (Gemv == GemvKernel.RowPerThread)
            _gemvRowPerThread(stream, tokens * outDim, x, w, y, inDim, outDim);
        else if (w.Kind != (int)WeightType.F32 && inDim % 4 == 0 && QuadAligned(w.Bits16))
            _gemvQuads(stream, new KernelConfig(tokens * outDim, _groupSize), x, w.Bits16.Cast<ulong>(), w.Kind, y, inDim, outDim);
        else
            _gemv(stream, new KernelConfig(tokens * outDim, _groupSize), x, w, y, inDim, outDim);
    }

    private static bool QuadAligned(ArrayView<ushort> bits) =>
        ((IContiguousArrayView)bits).IndexInBytes % sizeof(ulong) == 0 && bits.Length % 4 == 0;

    /// <summary>y = RMSNorm(x) · w per token row of <paramref name="dim"/> elements; y may be x.</summary>
    public void RmsNorm(AcceleratorStream stream, ArrayView<float> x, WeightView w, ArrayView<float> y, int tokens, int dim, float eps)
    {
        if (tokens > 0)
            _rmsNorm(stream, new KernelConfig(tokens, _groupSize), x, w, y, dim, eps);
    }

    /// <summary>Rotary embedding in place on x [tokens, heads, headDim] at the tokens' absolute positions.</summary>
    public void Rope(AcceleratorStream stream, ArrayView<float> x, ArrayView<int> positions, int tokens, int heads, int headDim, float theta)
    {
        if (tokens > 0)
            _rope(stream, tokens * heads * (headDim / 2), x, positions, heads, headDim, theta);
    }

    /// <summary>
    /// Causal grouped-query attention of q [tokens, heads, headDim] over a layer's cache (keys and values
    /// [maxSeq, kvHeads, headDim], already holding these tokens' entries) into output [tokens, heads, headDim].
    /// scores is scratch of at least tokens × heads × <paramref name="stride"/> floats, stride ≥ max position + 1.
    /// </summary>
    public void Attention(
        AcceleratorStream stream, ArrayView<float> q, ArrayView<float> keyCache, ArrayView<float> valueCache, ArrayView<float> output,
        ArrayView<int> positions, ArrayView<float> scores, int tokens, int heads, int kvHeads, int headDim, int stride)
    {
        if (tokens <= 0)
            return;
        _scores(stream, tokens * heads * stride, q, keyCache, scores, positions, heads, kvHeads, headDim, stride);
        _causalSoftmax(stream, new KernelConfig(tokens * heads, _groupSize), scores, positions, heads, stride);
        _values(stream, tokens * heads * headDim, scores, valueCache, output, positions, heads, kvHeads, headDim, stride);
    }

    /// <summary>Softmax of each row of scores [tokens · heads, stride] over positions 0..positions[token] in place.</summary>
    public void CausalSoftmax(AcceleratorStream stream, ArrayView<float> scores, ArrayView<int> positions, int heads, int stride) =>
        _causalSoftmax(stream, new KernelConfig(scores.IntLength / stride, _groupSize), scores, positions, heads, stride);

    /// <summary>gate = silu(gate) · up, element-wise over <paramref name="count"/> elements.</summary>
    public void SiluMul(AcceleratorStream stream, ArrayView<float> gate, ArrayView<float> up, int count)
    {
        if (count > 0)
            _siluMul(stream, count, gate, up);
    }

    /// <summary>y += x over <paramref name="count"/> elements (the residual adds).</summary>
    public void Add(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, int count)
    {
        if (count > 0)
            _add(stream, count, y, x);
    }

    /// <summary>destination[rows[r]] += scale[r] · source[r] for r &lt; n rows of dim (an expert's weighted output); rows distinct.</summary>
    public void ScaledAddRows(AcceleratorStream stream, ArrayView<float> destination, ArrayView<float> source, ArrayView<int> rows, ArrayView<float> scale, int n, int dim)
    {
        if (n > 0)
            _scaledAddRows(stream, n * dim, destination, source, rows, scale, dim);
    }

    /// <summary>destination[r] = source[rows[r]] for r &lt; n rows of dim (the tokens routed to one expert).</summary>
    public void GatherRows(AcceleratorStream stream, ArrayView<float> destination, ArrayView<float> source, ArrayView<int> rows, int n, int dim)
    {
        if (n > 0)
            _gatherRows(stream, n * dim, destination, source, rows, dim);
    }

    /// <summary>destination[rows[r]] = source[r] for r &lt; n rows of dim (rows distinct).</summary>
    public void ScatterRows(AcceleratorStream stream, ArrayView<float> destination, ArrayView<float> source, ArrayView<int> rows, int n, int dim)
    {
        if (n > 0)
            _scatterRows(stream, n * dim, destination, source, rows, dim);
    }

    /// <summary>target[r] += Σ_j weights[r·topK + j] · outputs[r·topK + j] in rank order, over rows of dim (the MoE residual add).</summary>
    public void MoeCombine(AcceleratorStream stream, ArrayView<float> outputs, ArrayView<float> weights, ArrayView<float> target, int rows, int topK, int dim)
    {
        if (rows > 0)
            _moeCombine(stream, rows * dim, outputs, weights, target, topK, dim);
    }

    /// <summary>output[t] = table[ids[t]] as FP32 rows of dim.</summary>
    public void Embed(AcceleratorStream stream, WeightView table, ArrayView<int> ids, ArrayView<float> output, int tokens, int dim)
    {
        if (tokens > 0)
            _embed(stream, tokens * dim, table, ids, output, dim);
    }

    /// <summary>Mixtral routing: logits [tokens, experts] → experts [tokens, topK] and renormalised weights [tokens, topK].</summary>
    public void RouteTopK(AcceleratorStream stream, ArrayView<float> logits, ArrayView<int> experts, ArrayView<float> weights, int tokens, int expertCount, int topK)
    {
        if (tokens > 0)
            _router(stream, tokens, logits, experts, weights, expertCount, topK);
    }

    public void Dispose() => _blas?.Dispose();
}

/// <summary>The two GEMV kernels.</summary>
public enum GemvKernel
{
    /// <summary>One warp per output row, lanes striding the row (coalesced loads) and a shuffle reduction: for GPUs.</summary>
    WarpPerRow,

    /// <summary>One thread per output row: for the CPU accelerator.</summary>
    RowPerThread,
}
