using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Common.Native;

/// <summary>A shared mapping of a file; unmapped when released.</summary>
public sealed unsafe class MappedMemory : SafeHandleZeroOrMinusOneIsInvalid
{
    private MappedMemory(nint address, long length) : base(ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
    }

    /// <summary>Size of the mapping in bytes.</summary>
    public long Length { get; }

    /// <summary>The first mapped byte; valid until the handle is released.</summary>
    public byte* Pointer => (byte*)handle;

    /// <summary>Maps <paramref name="length"/> bytes of <paramref name="file"/>; throws <see cref="IOException"/> with errno text on failure.</summary>
    public static MappedMemory Map(SafeFileHandle file, long length, bool writable)
    {
        var address = LibC.Mmap(0, (nuint)length, writable ? LibC.ProtRead | LibC.ProtWrite : LibC.ProtRead, LibC.MapShared,
            (int)file.DangerousGetHandle(), 0);
        if (address == -1)
            throw new IOException($"mmap of {length} bytes failed: {Marshal.GetLastPInvokeErrorMessage()}");
        return new MappedMemory(address, length);
    }

    protected override bool ReleaseHandle() => LibC.Munmap(handle, (nuint)Length) == 0;
}
