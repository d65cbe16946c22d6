using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Transport.Shm;

/// <summary>The few libc calls the shm backend needs: mapping a file or DAX device into memory.</summary>
internal static unsafe partial class LibC
{
    public const int ProtRead = 0x1;
    public const int ProtWrite = 0x2;
    public const int MapShared = 0x01;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);
}

/// <summary>A shared mapping of a file; unmapped when released.</summary>
internal sealed unsafe class MappedMemory : SafeHandleZeroOrMinusOneIsInvalid
{
    private MappedMemory(nint address, long length) : base(ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
    }

    public long Length { get; }

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
