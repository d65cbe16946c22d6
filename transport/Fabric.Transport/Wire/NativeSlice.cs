using System.Buffers;

namespace Fabric.Transport.Wire;

/// <summary>
/// A reusable <see cref="Memory{T}"/> view of native memory (a region range) so sockets can send straight from it.
/// One owner at a time: point it at a range, use the memory, point it elsewhere.
/// </summary>
internal sealed unsafe class NativeSlice : MemoryManager<byte>
{
    private byte* _pointer;
    private int _length;

    public Memory<byte> Set(byte* pointer, int length)
    {
        _pointer = pointer;
        _length = length;
        return Memory;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
