using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Fabric.Engine.Gpu.Kernels;

/// <summary>cuBLAS SGEMV/SGEMM for FP32 projections on a CUDA accelerator (row-major data through column-major BLAS).</summary>
internal sealed class CudaBlas : IDisposable
{
    private readonly CuBlas _blas;

    private CudaBlas(CuBlas blas) => _blas = blas;

    /// <summary>A handle on a CUDA accelerator, or null with the reason (not CUDA, libcublas missing).</summary>
    public static CudaBlas? TryCreate(Accelerator accelerator, out string? reason)
    {
        if (accelerator is not CudaAccelerator cuda)
        {
            reason = "cuBLAS runs only on a CUDA accelerator";
            return null;
        }
        try
        {
            reason = null;
            return new CudaBlas(new CuBlas(cuda));
        }
        catch (Exception e) when (e is DllNotFoundException or CuBlasException or EntryPointNotFoundException or TypeInitializationException)
        {
            reason = $"cuBLAS did not load ({e.Message})";
            return null;
        }
    }

    /// <summary>
    /// y[tokens, out] = x[tokens, in] · wᵀ, w row-major [out, in]. Column-major, w is A (in × out, lda = in), so
    /// yᵀ = Aᵀ · xᵀ: GEMV with op T for one token, GEMM (T, N) for several.
    /// </summary>
    public void Project(AcceleratorStream stream, ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, int tokens, int inDim, int outDim)
    {
        _blas.Stream = (CudaStream)stream;
        if (tokens == 1)
        {
            _blas.Gemv(CuBlasOperation.Transpose, inDim, outDim, 1f, w, inDim,
                new ArrayView1D<float, Stride1D.General>(x, inDim, new Stride1D.General(1)), 0f,
                new ArrayView1D<float, Stride1D.General>(y, outDim, new Stride1D.General(1)));
            return;
        }
        _blas.Gemm(CuBlasOperation.Transpose, CuBlasOperation.NonTranspose, outDim, tokens, inDim, 1f, w, inDim, x, inDim, 0f, y, outDim);
    }

    public void Dispose() => _blas.Dispose();
}
