using System.Runtime.InteropServices;

namespace Fabric.Engine.Gpu.Memory;

/// <summary>The one CUDA driver call ILGPU's CudaAPI does not expose: making a stream wait on an event on the device.</summary>
internal static partial class CudaDriver
{
    private const string Library = "libcuda.so.1";

    [LibraryImport(Library, EntryPoint = "cuStreamWaitEvent")]
    private static partial int StreamWaitEventNative(IntPtr stream, IntPtr cudaEvent, uint flags);

    /// <summary>Queues on <paramref name="stream"/> a wait for <paramref name="cudaEvent"/>; the host does not block.</summary>
    public static void StreamWaitEvent(IntPtr stream, IntPtr cudaEvent)
    {
        int status = StreamWaitEventNative(stream, cudaEvent, 0);
        if (status != 0)
            throw new GpuUnavailableException($"cuStreamWaitEvent failed with CUDA error {status}.");
    }
}
