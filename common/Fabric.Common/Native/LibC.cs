using System.Runtime.InteropServices;

namespace Fabric.Common.Native;

/// <summary>
/// The one libc binding: memory mappings (shm regions, the host-memory bank), madvise, poll(2) (the RDMA
/// connection manager's descriptor), statx(2) and open-file-description locks (who owns an shm bank). Every call sets errno; read it with <see cref="Marshal.GetLastPInvokeError"/>.
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
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtEmptyPath = 0x1000;
    public const uint StatxBasicStats = 0x7FF;
    public const int StatxBytes = 256;
    public const int FOfdSetLk = 37;
    public const short FRdLck = 0;
    public const short FWrLck = 1;

    /// <summary>struct flock (LP64 Linux): a lock on bytes [Start, Start + Length) of a file; Length 0 means to its end.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct FLock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length;
        public int Pid;
    }

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

    [LibraryImport(Library, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    /// <summary>fcntl(2) with a struct flock argument (F_OFD_SETLK and friends).</summary>
    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int FcntlLock(SafeHandle fd, int command, FLock* flock);
}
