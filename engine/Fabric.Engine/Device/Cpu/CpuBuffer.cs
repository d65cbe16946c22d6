using System.Runtime.InteropServices;

namespace Fabric.Engine.Device.Cpu;

/// <summary>A CPU device allocation: 64-byte aligned native memory (may exceed 2 GiB), returned to the budget on dispose.</summary>
public sealed unsafe class CpuBuffer : DeviceBuffer
{
    private readonly DeviceMemoryBudget _budget;
    private byte* _pointer;

    internal CpuBuffer(long bytes, string purpose, DeviceMemoryBudget budget) : base(bytes, purpose)
    {
        _budget = budget;
        _pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, bytes), 64);
        NativeMemory.Clear(_pointer, (nuint)bytes);
    }

    ~CpuBuffer() => Dispose(false);

    /// <summary>The first byte; valid until dispose.</summary>
    public byte* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(Purpose);

    /// <summary>A float view starting at <paramref name="floatOffset"/>.</summary>
    public float* Floats(long floatOffset = 0) => (float*)Pointer + floatOffset;

    protected override void Dispose(bool disposing)
    {
        if (_pointer == null)
            return;
        NativeMemory.AlignedFree(_pointer);
        _pointer = null;
        _budget.Release(Bytes);
    }
}
