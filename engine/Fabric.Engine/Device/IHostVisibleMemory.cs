using System.Buffers;

namespace Fabric.Engine.Device;

/// <summary>
/// A device whose buffers are host memory (the CPU device). The engine then reads experts from the pool straight
/// into their slot — verifying the checksum there before the slot is marked ready — instead of through a staging
/// buffer and a second copy. A GPU device does not implement this.
/// </summary>
public interface IHostVisibleMemory
{
    /// <summary>
    /// <paramref name="length"/> bytes of <paramref name="buffer"/> at <paramref name="byteOffset"/> as host memory, valid
    /// while the buffer lives. Create once and keep (it allocates a small wrapper).
    /// </summary>
    Memory<byte> HostMemory(DeviceBuffer buffer, long byteOffset, int length);
}

/// <summary>A <see cref="Memory{T}"/> over unmanaged memory that someone else owns and keeps alive.</summary>
internal sealed unsafe class UnmanagedMemory : MemoryManager<byte>
{
    private readonly byte* _pointer;
    private readonly int _length;

    public UnmanagedMemory(byte* pointer, int length)
    {
        _pointer = pointer;
        _length = length;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
