using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace Fabric.Engine.Gpu.Memory;

/// <summary>
/// Small per-op arrays (token ids, positions, routed rows, combine weights) moved to the device without a stream
/// synchronisation: written into a pinned host ring and copied asynchronously, in stream order, into a device ring
/// of the same size. When the ring wraps, the stream is synchronised once so that no queued copy still reads the
/// host bytes about to be overwritten. Device-only results (router output) take space from the same ring.
/// </summary>
internal sealed class ParameterRing : IDisposable
{
    private const int AlignmentBytes = 64;

    private readonly AcceleratorStream _stream;
    private readonly ArrayView<byte> _device;
    private readonly PinnedStaging _host;
    private long _cursor;

    /// <summary>A ring over <paramref name="device"/> (owned by the caller) with a pinned host twin, used on <paramref name="stream"/>.</summary>
    public ParameterRing(Accelerator accelerator, AcceleratorStream stream, ArrayView<byte> device)
    {
        _stream = stream;
        _device = device;
        _host = PinnedStaging.Allocate(accelerator, checked((int)device.Length));
    }

    /// <summary>Bytes in the ring.</summary>
    public long Capacity => _device.Length;

    /// <summary>Most elements of <typeparamref name="T"/> one call may move.</summary>
    public int MaxElements<T>() where T : unmanaged => (int)(_device.Length / Marshal.SizeOf<T>());

    /// <summary>Copies <paramref name="values"/> to the device in stream order; the view is valid for ops enqueued next.</summary>
    public ArrayView<T> Upload<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values);
        long offset = Take(bytes.Length);
        bytes.CopyTo(_host.Span.Slice((int)offset, bytes.Length));
        var target = _device.SubView(offset, Math.Max(bytes.Length, 1));
        if (bytes.Length > 0)
            target.SubView(0, bytes.Length).CopyFrom(_stream, _host.HostView.SubView(offset, bytes.Length));
        return target.SubView(0, bytes.Length).Cast<T>();
    }

    /// <summary>Device space for <paramref name="count"/> elements that a kernel will write.</summary>
    public ArrayView<T> Reserve<T>(int count) where T : unmanaged
    {
        int bytes = count * Marshal.SizeOf<T>();
        return _device.SubView(Take(bytes), bytes).Cast<T>();
    }

    private long Take(long bytes)
    {
        long size = (Math.Max(bytes, 1) + AlignmentBytes - 1) / AlignmentBytes * AlignmentBytes;
        if (size > _device.Length)
            throw new InvalidOperationException($"{bytes} bytes of op parameters exceed the {_device.Length}-byte parameter ring.");
        if (_cursor + size > _device.Length)
        {
            _stream.Synchronize();
            _cursor = 0;
        }
        long offset = _cursor;
        _cursor += size;
        return offset;
    }

    public void Dispose() => _host.Dispose();
}
