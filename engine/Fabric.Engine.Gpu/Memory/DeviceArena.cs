using Fabric.Common;
using ILGPU;
using ILGPU.Runtime;

namespace Fabric.Engine.Gpu.Memory;

/// <summary>
/// The engine's whole device allocation: one buffer of <see cref="CapacityBytes"/> taken from the driver at start and
/// carved first-fit into dense weights, the KV cache, scratch and expert slots. Since the engine's tensors come only
/// from here, <c>--device-memory</c> caps its GPU allocation by construction (the driver's free figure drops by the
/// capacity and no more). Thread-safe.
/// </summary>
public sealed class DeviceArena : IDisposable
{
    /// <summary>Every region starts on this many bytes (a cache line; cuBLAS and vector loads want 16).</summary>
    public const int AlignmentBytes = 64;

    private readonly MemoryBuffer1D<byte, Stride1D.Dense> _buffer;
    private readonly List<(long Start, long Length)> _free = [];
    private readonly Lock _gate = new();
    private long _allocated;

    /// <summary>Takes <paramref name="capacityBytes"/> of device memory from <paramref name="accelerator"/> (not owned).</summary>
    public DeviceArena(Accelerator accelerator, long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityBytes);
        long deviceBytes = IlgpuAccelerators.MemoryBytes(accelerator);
        if (capacityBytes > deviceBytes)
            throw new GpuUnavailableException(
                $"The device memory budget of {ByteSize.Format(capacityBytes)} is more than {accelerator.Name} has ({ByteSize.Format(deviceBytes)}).");
        try
        {
            _buffer = accelerator.Allocate1D<byte>(capacityBytes);
        }
        catch (Exception e) when (e is AcceleratorException or OutOfMemoryException or InvalidOperationException)
        {
            throw new GpuUnavailableException(
                $"{accelerator.Name} could not allocate the device memory budget of {ByteSize.Format(capacityBytes)} ({e.Message}).", e);
        }
        CapacityBytes = capacityBytes;
        _free.Add((0, capacityBytes));
    }

    /// <summary>The budget in bytes.</summary>
    public long CapacityBytes { get; }

    /// <summary>Bytes handed out now, alignment padding included.</summary>
    public long AllocatedBytes
    {
        get
        {
            lock (_gate)
                return _allocated;
        }
    }

    /// <summary>Bytes not handed out (possibly fragmented).</summary>
    public long FreeBytes => CapacityBytes - AllocatedBytes;

    /// <summary>Bytes a region of <paramref name="bytes"/> costs once aligned.</summary>
    public static long AlignedSize(long bytes) => (Math.Max(bytes, 1) + AlignmentBytes - 1) / AlignmentBytes * AlignmentBytes;

    /// <summary>Carves <paramref name="bytes"/>; when they do not fit, one sentence naming <paramref name="purpose"/> and how much is needed.</summary>
    public ArrayView<byte> Allocate(long bytes, string purpose)
    {
        if (!TryAllocate(bytes, out var view))
            throw new GpuUnavailableException(
                $"The device memory budget of {ByteSize.Format(CapacityBytes)} cannot hold {purpose} ({ByteSize.Format(bytes)}): " +
                $"{ByteSize.Format(AllocatedBytes)} are already allocated, so at least {ByteSize.Format(AllocatedBytes + AlignedSize(bytes))} are needed.");
        return view;
    }

    /// <summary>Carves <paramref name="bytes"/> first-fit if a free range holds them.</summary>
    public bool TryAllocate(long bytes, out ArrayView<byte> view)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        long size = AlignedSize(bytes);
        lock (_gate)
        {
            for (int i = 0; i < _free.Count; i++)
            {
                var (start, length) = _free[i];
                if (length < size)
                    continue;
                if (length == size)
                    _free.RemoveAt(i);
                else
                    _free[i] = (start + size, length - size);
                _allocated += size;
                view = _buffer.View.SubView(start, bytes);
                return true;
            }
        }
        view = default;
        return false;
    }

    /// <summary>Returns a region <see cref="Allocate"/> handed out; neighbouring free ranges merge.</summary>
    public void Free(ArrayView<byte> region)
    {
        long start = ((IContiguousArrayView)region).Index;
        long size = AlignedSize(region.Length);
        lock (_gate)
        {
            int i = 0;
            while (i < _free.Count && _free[i].Start < start)
                i++;
            _free.Insert(i, (start, size));
            _allocated -= size;
            if (i + 1 < _free.Count && _free[i].Start + _free[i].Length == _free[i + 1].Start)
            {
                _free[i] = (_free[i].Start, _free[i].Length + _free[i + 1].Length);
                _free.RemoveAt(i + 1);
            }
            if (i > 0 && _free[i - 1].Start + _free[i - 1].Length == _free[i].Start)
            {
                _free[i - 1] = (_free[i - 1].Start, _free[i - 1].Length + _free[i].Length);
                _free.RemoveAt(i);
            }
        }
    }

    /// <summary>Carves an FP32 array of <paramref name="count"/> elements.</summary>
    public ArrayView<float> AllocateFloats(long count, string purpose) => Allocate(count * sizeof(float), purpose).Cast<float>();

    /// <summary>Carves an int array of <paramref name="count"/> elements.</summary>
    public ArrayView<int> AllocateInts(long count, string purpose) => Allocate(count * sizeof(int), purpose).Cast<int>();

    public void Dispose() => _buffer.Dispose();
}
