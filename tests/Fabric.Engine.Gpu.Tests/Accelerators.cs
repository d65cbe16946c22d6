using System.Collections.Concurrent;
using System.Reflection;

using Fabric.Engine.Gpu.Kernels;
using Xunit.Sdk;

namespace Fabric.Engine.Gpu.Tests;

/// <summary>One accelerator and its compiled kernels per device, shared by the whole test assembly.</summary>
internal static class Accelerators
{
    private static readonly ConcurrentDictionary<string, Lazy<(GpuAccelerator Device, GpuKernels Kernels)>> Open = new();

    private static readonly ConcurrentDictionary<(string, GemvKernel), GpuKernels> WithGemv = new();

    /// <summary>Kernels on <paramref name="device"/> with the GEMV kernel forced to <paramref name="gemv"/>.</summary>
    public static GpuKernels Get(string device, GemvKernel gemv) =>
        WithGemv.GetOrAdd((device, gemv), key => new GpuKernels(Get(key.Item1).Device.Accelerator, useBlas: false, gemv: key.Item2));

    public static (GpuAccelerator Device, GpuKernels Kernels) Get(string device) =>
        Open.GetOrAdd(device, d => new Lazy<(GpuAccelerator, GpuKernels)>(() =>
        {
            var accelerator = IlgpuAccelerators.Open(d);
            return (accelerator, new GpuKernels(accelerator.Accelerator));
        })).Value;

    /// <summary>Null when a CUDA device is present, else why not (cached: discovery loads the driver).</summary>
    public static string? CudaAbsence => CudaReason.Value;

    private static readonly Lazy<string?> CudaReason = new(IlgpuAccelerators.CudaAbsenceReason);
}

/// <summary>A test that needs a CUDA device: skipped, with the reason, where there is none.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (Accelerators.CudaAbsence is { } reason)
            Skip = reason;
    }
}

/// <summary>Runs a theory on ILGPU's CPU accelerator (every machine).</summary>
public sealed class IlgpuCpuDataAttribute : DataAttribute
{
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => [["ilgpu-cpu"]];
}

/// <summary>Runs a theory on CUDA device 0; skipped, with the reason, where there is none.</summary>
public sealed class CudaDataAttribute : DataAttribute
{
    public CudaDataAttribute()
    {
        if (Accelerators.CudaAbsence is { } reason)
            Skip = reason;
    }

    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => [["cuda:0"]];
}
