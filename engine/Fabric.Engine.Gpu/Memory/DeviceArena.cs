using ILGPU;
using ILGPU.Runtime;

namespace Fabric.Engine.Gpu.Memory;

/// <summary>
/// The engine's whole device allocation: one buffer of <see cref="CapacityBytes"/> taken from the driver at start,
/// carved by a bump allocator into dense weights, the KV cache, scratch and expert slots. Since nothing else is
/// allocated for the engine's tensors, <c>--device-memory</c> caps the engine's GPU allocation by construction.
/// Carving is done once at start-up; regions live as long as the arena.
/// </summary>
public sealed class DeviceArena : IDisposable
{
    /// <summary>Every region starts on this many bytes (CUDA's allocation alignment; keeps FP32 and vector loads aligned).</summary>
    public const int AlignmentBytes = 256;

    private readonly MemoryBuffer1D<byte, Stride1D.Dense> _buffer;
    private long _next;

    /// <summary>Takes <paramref name="capacityBytes"/> of device memory from <paramref name="accelerator"/> (not owned).</summary>
    public DeviceArena(Accelerator accelerator, long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityBytes);
        long deviceBytes = GpuDevices.MemoryBytes(accelerator);
        if (capacityBytes > deviceBytes)
            throw new GpuUnavailableException(
                $"The device memory budget of {Bytes.Format(capacityBytes)} is more than {accelerator.Name} has ({Bytes.Format(deviceBytes)}).");
        try
        {
            _buffer = accelerator.Allocate1D<byte>(capacityBytes);
        }
        catch (Exception e) when (e is AcceleratorException or OutOfMemoryException or InvalidOperationException)
        {
            throw new GpuUnavailableException(
                $"{accelerator.Name} could not allocate the device memory budget of {Bytes.Format(capacityBytes)} ({e.Message}).", e);
        }
        CapacityBytes = capacityBytes;
    }

    /// <summary>The budget in bytes.</summary>
    public long CapacityBytes { get; }

    /// <summary>Bytes handed out so far, alignment padding included.</summary>
    public long AllocatedBytes => _next;

    /// <summary>Bytes still free.</summary>
    public long FreeBytes => CapacityBytes - _next;

    /// <summary>Bytes a region of <paramref name="bytes"/> costs once aligned.</summary>
    public static long AlignedSize(long bytes) => (bytes + AlignmentBytes - 1) / AlignmentBytes * AlignmentBytes;

    /// <summary>Carves <paramref name="bytes"/>; when they do not fit, one sentence naming <paramref name="purpose"/> and how much is needed.</summary>
    public ArrayView<byte> Allocate(long bytes, string purpose)
    {
        if (!TryAllocate(bytes, out var view))
            throw new GpuUnavailableException(
                $"The device memory budget of {Bytes.Format(CapacityBytes)} cannot hold {purpose} ({Bytes.Format(bytes)}): " +
                $"{Bytes.Format(_next)} are already allocated, so at least {Bytes.Format(_next + AlignedSize(bytes))} are needed.");
        return view;
    }

    /// <summary>Carves <paramref name="bytes"/> if they fit.</summary>
    public bool TryAllocate(long bytes, out ArrayView<byte> view)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        long size = AlignedSize(Math.Max(bytes, 1));
        if (size > FreeBytes)
        {
            view = default;
            return false;
        }
        view = _buffer.View.SubView(_next, bytes);
        _next += size;
        return true;
    }

    /// <summary>Carves an FP32 array of <paramref name="count"/> elements.</summary>
    public ArrayView<float> AllocateFloats(long count, string purpose) => Allocate(count * sizeof(float), purpose).Cast<float>();

    /// <summary>Carves an int array of <paramref name="count"/> elements.</summary>
    public ArrayView<int> AllocateInts(long count, string purpose) => Allocate(count * sizeof(int), purpose).Cast<int>();

    public void Dispose() => _buffer.Dispose();
}
