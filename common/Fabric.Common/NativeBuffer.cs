using System.Buffers;
using System.Runtime.InteropServices;

namespace Fabric.Common;

/// <summary>
/// Aligned native memory that never moves: staging buffers, region backing, read destinations. Owns its memory and
/// frees it on dispose. <see cref="MemoryManager{T}.Memory"/> hands it to APIs that take <see cref="Memory{T}"/> without copying.
/// </summary>
public sealed unsafe class NativeBuffer : MemoryManager<byte>
{
    /// <summary>The alignment used when none is given: a 4 KiB page.</summary>
    public const int PageBytes = 4096;

    private byte* _pointer;

    /// <summary>Allocates <paramref name="length"/> bytes aligned to <paramref name="alignment"/> (a power of two); zeroed when asked.</summary>
    public NativeBuffer(long length, int alignment = PageBytes, bool zero = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(length), $"A NativeBuffer holds at most {int.MaxValue} bytes; {length} were asked for.");
        Length = (int)length;
        _pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, length), (nuint)alignment);
        if (zero)
            NativeMemory.Clear(_pointer, (nuint)length);
    }

    /// <summary>Size in bytes.</summary>
    public int Length { get; }

    /// <summary>The first byte; valid until dispose.</summary>
    public byte* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(nameof(NativeBuffer));

    /// <summary>The whole buffer as a span.</summary>
    public Span<byte> Span => new(Pointer, Length);

    public override Span<byte> GetSpan() => Span;

    /// <summary>The memory is already fixed; pinning only hands out the pointer.</summary>
    public override MemoryHandle Pin(int elementIndex = 0) => new(Pointer + elementIndex);

    public override void Unpin() { }

    /// <summary>
    /// Raised once, just before the memory is freed, so that whoever registered it elsewhere (a GPU driver's page lock)
    /// can unregister it while the address is still this buffer's.
    /// </summary>
    public event Action<NativeBuffer>? Freeing;

    /// <summary>Frees the memory; every span and <see cref="Memory{T}"/> over it is invalid afterwards.</summary>
    public void Dispose() => ((IDisposable)this).Dispose();

    protected override void Dispose(bool disposing)
    {
        if (_pointer != null)
        {
            Freeing?.Invoke(this);
            Freeing = null;
            NativeMemory.AlignedFree(_pointer);
            _pointer = null;
        }
    }
}
