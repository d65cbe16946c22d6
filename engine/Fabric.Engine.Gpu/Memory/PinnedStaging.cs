using Fabric.Common;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace Fabric.Engine.Gpu.Memory;

/// <summary>
/// A host staging buffer registered page-locked with the accelerator once (cuMemHostRegister on CUDA), so that
/// copies out of it are true DMA and run asynchronously on a stream. The transport reads experts into
/// <see cref="Memory"/>; <see cref="CopyQueue"/> moves them into device slots.
/// </summary>
public sealed unsafe class PinnedStaging : IDisposable
{
    private readonly NativeBuffer _buffer;
    private readonly bool _ownsBuffer;
    private readonly PageLockScope<byte> _lock;
    private readonly MemoryBuffer _hostSource;

    /// <summary>Registers <paramref name="buffer"/> (owned only when <paramref name="ownsBuffer"/>) with <paramref name="accelerator"/>.</summary>
    public PinnedStaging(Accelerator accelerator, NativeBuffer buffer, bool ownsBuffer = false)
    {
        _buffer = buffer;
        _ownsBuffer = ownsBuffer;
        _lock = accelerator.CreatePageLockFromPinned<byte>((IntPtr)buffer.Pointer, buffer.Length);
        _hostSource = CPUMemoryBuffer.Create(accelerator, (IntPtr)buffer.Pointer, buffer.Length, sizeof(byte));
        HostView = _hostSource.AsArrayView<byte>(0, buffer.Length);
    }

    /// <summary>Allocates a page-aligned staging buffer of <paramref name="bytes"/> and registers it.</summary>
    public static PinnedStaging Allocate(Accelerator accelerator, int bytes) => new(accelerator, new NativeBuffer(bytes), ownsBuffer: true);

    /// <summary>The staging bytes for the transport to read into.</summary>
    public Memory<byte> Memory => _buffer.Memory;

    /// <summary>The staging bytes as a span.</summary>
    public Span<byte> Span => _buffer.Span;

    /// <summary>Size in bytes.</summary>
    public int Length => _buffer.Length;

    /// <summary>True when the driver page-locked the memory (CUDA); the CPU accelerator needs no locking.</summary>
    public bool IsPageLocked => _lock is CudaPageLockScope<byte>;

    /// <summary>The staging memory as a host-side ILGPU view, the source of stream copies.</summary>
    public ArrayView<byte> HostView { get; }

    public void Dispose()
    {
        _hostSource.Dispose();
        _lock.Dispose();
        if (_ownsBuffer)
            ((IDisposable)_buffer).Dispose();
    }
}
