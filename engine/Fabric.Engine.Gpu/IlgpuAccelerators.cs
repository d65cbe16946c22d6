using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Fabric.Engine.Gpu;

/// <summary>One accelerator ILGPU can open here.</summary>
/// <param name="Spec">The <c>--device</c> value that selects it.</param>
/// <param name="Name">The device's name as its driver reports it.</param>
/// <param name="MemoryBytes">Device memory in bytes (for the CPU accelerator: the host's memory).</param>
/// <param name="Detail">Compute capability, warp size, multiprocessors.</param>
public sealed record IlgpuAcceleratorInfo(AcceleratorSpec Spec, string Name, long MemoryBytes, string Detail);

/// <summary>
/// What ILGPU can open on this machine: lists the CUDA devices and the CPU accelerator, and opens one as a
/// <see cref="GpuAccelerator"/> by its device name. Knows nothing of the engine's <c>DeviceRegistry</c>.
/// </summary>
public static class IlgpuAccelerators
{
    /// <summary>Every CUDA device, then the CPU accelerator (always present).</summary>
    public static IReadOnlyList<IlgpuAcceleratorInfo> List()
    {
        using var context = CreateContext();
        var result = new List<IlgpuAcceleratorInfo>();
        var cuda = context.GetCudaDevices();
        for (int i = 0; i < cuda.Count; i++)
        {
            var device = cuda[i];
            result.Add(new IlgpuAcceleratorInfo(new AcceleratorSpec(AcceleratorKind.Cuda, i), device.Name, device.MemorySize,
                $"sm_{device.Architecture?.Major}{device.Architecture?.Minor}, {device.NumMultiprocessors} SMs, driver {device.DriverVersion}"));
        }
        var cpu = context.GetCPUDevice(0);
        result.Add(new IlgpuAcceleratorInfo(new AcceleratorSpec(AcceleratorKind.IlgpuCpu, 0), "ILGPU CPU accelerator", HostMemoryBytes,
            $"warp {cpu.WarpSize}, {cpu.NumMultiprocessors} multiprocessor(s); runs the GPU kernels on host threads"));
        return result;
    }

    /// <summary>The host's memory in bytes: what the CPU accelerator really has (ILGPU reports it as unbounded).</summary>
    public static long HostMemoryBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>Device memory in bytes: the driver's figure on CUDA, the host's memory for the CPU accelerator.</summary>
    public static long MemoryBytes(Accelerator accelerator) => accelerator is CPUAccelerator ? HostMemoryBytes : accelerator.MemorySize;

    /// <summary>Null when CUDA devices are present, else the sentence saying why there are none.</summary>
    public static string? CudaAbsenceReason()
    {
        if (!NativeLibrary.TryLoad(OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1", out var handle))
            return "no CUDA device: the CUDA driver library (libcuda.so.1) is not installed on this machine";
        NativeLibrary.Free(handle);
        using var context = CreateContext();
        return context.GetCudaDevices().Count == 0 ? "no CUDA device: the CUDA driver is installed but reports no devices" : null;
    }

    /// <summary>Opens the accelerator <paramref name="spec"/> names; a missing device is one clear sentence.</summary>
    public static GpuAccelerator Open(AcceleratorSpec spec)
    {
        var context = CreateContext();
        try
        {
            Accelerator accelerator;
            if (spec.Kind == AcceleratorKind.IlgpuCpu)
            {
                accelerator = context.CreateCPUAccelerator(0);
            }
            else
            {
                var cuda = context.GetCudaDevices();
                if (cuda.Count == 0)
                    throw new GpuUnavailableException($"Cannot open device {spec}: {CudaAbsenceReason() ?? "no CUDA device"}.");
                if (spec.Ordinal >= cuda.Count)
                    throw new GpuUnavailableException($"Cannot open device {spec}: this machine has {cuda.Count} CUDA device(s), numbered from 0.");
                accelerator = context.CreateCudaAccelerator(spec.Ordinal);
            }
            return new GpuAccelerator(spec, context, accelerator);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Parses and opens a <c>--device</c> value.</summary>
    public static GpuAccelerator Open(string device) => Open(AcceleratorSpec.Parse(device));

    private static Context CreateContext() =>
        Context.Create(builder => builder.CPU().Cuda().EnableAlgorithms().Profiling().Optimize(OptimizationLevel.O1));
}
