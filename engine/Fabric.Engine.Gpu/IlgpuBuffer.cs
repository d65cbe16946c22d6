using Fabric.Engine.Device;
using ILGPU;

namespace Fabric.Engine.Gpu;

/// <summary>An <see cref="IlgpuDevice"/> allocation: a region of the device arena, returned to it and to the budget on dispose.</summary>
public sealed class IlgpuBuffer : DeviceBuffer
{
    private readonly IlgpuDevice _owner;
    private bool _disposed;

    internal IlgpuBuffer(IlgpuDevice owner, ArrayView<byte> view, long bytes, string purpose) : base(bytes, purpose)
    {
        _owner = owner;
        View = view;
    }

    internal IlgpuDevice Owner => _owner;

    /// <summary>The bytes in device memory; valid until dispose.</summary>
    public ArrayView<byte> View { get; }

    /// <summary>The buffer as FP32 elements.</summary>
    public ArrayView<float> Floats => View.SubView(0, View.Length / sizeof(float) * sizeof(float)).Cast<float>();

    protected override void Dispose(bool disposing)
    {
        if (_disposed)
            return;
        _disposed = true;
        _owner.Free(this);
    }
}
