using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Fabric.Engine.Gpu;

/// <summary>An open ILGPU accelerator and the context that owns it; disposing frees both (and every buffer still on it).</summary>
public sealed class GpuAccelerator : IDisposable
{
    private readonly Context _context;

    internal GpuAccelerator(AcceleratorSpec spec, Context context, Accelerator accelerator)
    {
        Spec = spec;
        _context = context;
        Accelerator = accelerator;
    }

    /// <summary>What <c>--device</c> selected.</summary>
    public AcceleratorSpec Spec { get; }

    /// <summary>The ILGPU accelerator; owned by this object.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>True on a CUDA accelerator.</summary>
    public bool IsCuda => Accelerator is CudaAccelerator;

    /// <summary>The device's name.</summary>
    public string Name => Accelerator.Name;

    /// <summary>Device memory in bytes as the driver reports it.</summary>
    public long MemoryBytes => IlgpuAccelerators.MemoryBytes(Accelerator);

    /// <summary>Free device memory in bytes from the CUDA driver (cuMemGetInfo); null on the CPU accelerator.</summary>
    public long? FreeMemoryBytes()
    {
        if (Accelerator is not CudaAccelerator)
            return null;
        Accelerator.Bind();
        CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.GetMemoryInfo(out long free, out long _));
        return free;
    }

    public void Dispose()
    {
        Accelerator.Dispose();
        _context.Dispose();
    }
}
