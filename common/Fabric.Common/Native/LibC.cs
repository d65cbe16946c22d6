using System.Runtime.InteropServices;

namespace Fabric.Common.Native;

/// <summary>
/// The one libc binding: memory mappings (shm regions, the host-memory bank), madvise, poll(2) (the RDMA
/// connection manager's descriptor), open/statx/mkfifo (what a path is, opened without blocking on it),
/// open-file-description locks (who owns an shm bank), sealed memory files (memfd_create, file seals) and passing a
/// descriptor over a Unix socket (sendmsg/recvmsg with SCM_RIGHTS). Every call sets errno; read it with
/// <see cref="Marshal.GetLastPInvokeError"/>.
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
    public const int AtSymlinkNoFollow = 0x100;
    public const uint StatxBasicStats = 0x7FF;
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

    public const int OpenReadOnly = 0;
    public const int OpenNonBlocking = 0x800;
    public const int OpenCloseOnExec = 0x80000;
    public const int AtCurrentDirectory = -100;
    public const int AtEmptyPath = 0x1000;
    public const uint StatxType = 0x1;
    public const uint StatxSize = 0x200;

    /// <summary>The file-type bits of a mode (S_IFMT) and their values.</summary>
    public const int FileTypeMask = 0xF000;
    public const int FileTypeFifo = 0x1000;
    public const int FileTypeCharacterDevice = 0x2000;
    public const int FileTypeDirectory = 0x4000;
    public const int FileTypeBlockDevice = 0x6000;
    public const int FileTypeRegular = 0x8000;
    public const int FileTypeSymbolicLink = 0xA000;
    public const int FileTypeSocket = 0xC000;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    /// <summary>struct statx: the kernel's layout, the same on every architecture (256 bytes); only the fields read here.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatxBuffer
    {
        [FieldOffset(0)]
        public uint Mask;

        [FieldOffset(28)]
        private readonly ushort _mode;

        [FieldOffset(32)]
        public ulong Inode;

        [FieldOffset(40)]
        public ulong Size;

        [FieldOffset(136)]
        public uint DeviceMajor;

        [FieldOffset(140)]
        public uint DeviceMinor;

        /// <summary>stx_mode: the file type (<see cref="FileTypeMask"/>) and permission bits.</summary>
        public readonly int Mode => _mode;
    }

    public const uint MemfdCloseOnExec = 0x1;
    public const uint MemfdAllowSealing = 0x2;
    public const int FAddSeals = 1033;
    public const int FGetSeals = 1034;
    public const int SealSeal = 0x1;
    public const int SealShrink = 0x2;
    public const int SealGrow = 0x4;
    public const int SealWrite = 0x8;
    public const int SealFutureWrite = 0x10;
    public const int SolSocket = 1;
    public const int ScmRights = 1;
    public const int MsgDontWait = 0x40;
    public const int MsgNoSignal = 0x4000;
    public const int MsgControlCloseOnExec = 0x40000000;

    /// <summary>struct iovec: one buffer of a scatter/gather list.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVector
    {
        public nint Base;
        public nuint Length;
    }

    /// <summary>struct msghdr (LP64 Linux): the message of sendmsg/recvmsg, with its ancillary (control) data.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MessageHeader
    {
        public nint Name;
        public uint NameLength;
        public IoVector* Vectors;
        public nuint VectorCount;
        public nint Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct cmsghdr (LP64 Linux): one ancillary item; its data follows at <see cref="DataOffset"/>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ControlMessageHeader
    {
        public nuint Length;
        public int Level;
        public int Type;

        /// <summary>CMSG_DATA: bytes from the header to its data.</summary>
        public const int DataOffset = 16;

        /// <summary>CMSG_SPACE(sizeof(int)): the room one descriptor takes in a control buffer.</summary>
        public const int OneDescriptorSpace = 24;

        /// <summary>CMSG_LEN(sizeof(int)).</summary>
        public const int OneDescriptorLength = 20;
    }

    [LibraryImport(Library, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MemfdCreate(string name, uint flags);

    [LibraryImport(Library, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int Ftruncate(SafeHandle fd, long length);

    /// <summary>fcntl(2) with an int argument (F_ADD_SEALS, F_GET_SEALS).</summary>
    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int FcntlInt(SafeHandle fd, int command, int argument);

    [LibraryImport(Library, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMessage(SafeHandle socket, MessageHeader* message, int flags);

    [LibraryImport(Library, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint ReceiveMessage(SafeHandle socket, MessageHeader* message, int flags);

    [LibraryImport(Library, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int directoryFd, string path, int flags, uint mask, StatxBuffer* buffer);

    [LibraryImport(Library, EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mkfifo(string path, uint mode);

    [LibraryImport(Library, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport(Library, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    [LibraryImport(Library, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint address, nuint length, int advice);

    [LibraryImport(Library, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>fcntl(2) with a struct flock argument (F_OFD_SETLK and friends).</summary>
    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int FcntlLock(SafeHandle fd, int command, FLock* flock);
}
