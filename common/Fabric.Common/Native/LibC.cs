using System.Runtime.InteropServices;

namespace Fabric.Common.Native;

/// <summary>
/// The one libc binding: memory mappings (shm regions, the host-memory bank), madvise, and poll(2) (the RDMA
/// connection manager's descriptor). Every call sets errno; read it with <see cref="Marshal.GetLastPInvokeError"/>.
/// </summary>
public static unsafe partial class LibC
{
    public const string Library = "libc.so.6";

    public const int ProtRead = 0x1;
    public const int ProtWrite = 0x2;
    public const int MapShared = 0x01;
    public const int MapPrivate = 0x02;
    public const int MapAnonymous = 0x20;
    public const int MadvPopulateWrite = 23;
    public static readonly nint MapFailed = -1;
    public const short PollIn = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Library, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport(Library, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    [LibraryImport(Library, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint address, nuint length, int advice);

    [LibraryImport(Library, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);
}
