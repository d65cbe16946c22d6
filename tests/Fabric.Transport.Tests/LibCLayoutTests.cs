using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Fabric.Common.Native;

namespace Fabric.Transport.Tests;

/// <summary>
/// Proves the libc binding's struct layouts and constants (statx, struct flock, open, mmap, madvise, file types)
/// against the installed C headers.
/// </summary>
public sealed class LibCLayoutTests
{
    private static long Size<T>() where T : unmanaged => Unsafe.SizeOf<T>();
    private static long Offset<T>(string field) => Marshal.OffsetOf<T>(field).ToInt64();

    private static readonly (string C, long CSharp)[] Layout =
    [
        ("sizeof(struct statx)", Size<LibC.StatxBuffer>()),
        ("offsetof(struct statx, stx_mask)", Offset<LibC.StatxBuffer>(nameof(LibC.StatxBuffer.Mask))),
        ("offsetof(struct statx, stx_mode)", Offset<LibC.StatxBuffer>("_mode")),
        ("offsetof(struct statx, stx_ino)", Offset<LibC.StatxBuffer>(nameof(LibC.StatxBuffer.Inode))),
        ("offsetof(struct statx, stx_size)", Offset<LibC.StatxBuffer>(nameof(LibC.StatxBuffer.Size))),
        ("offsetof(struct statx, stx_dev_major)", Offset<LibC.StatxBuffer>(nameof(LibC.StatxBuffer.DeviceMajor))),
        ("offsetof(struct statx, stx_dev_minor)", Offset<LibC.StatxBuffer>(nameof(LibC.StatxBuffer.DeviceMinor))),
        ("sizeof(struct flock)", Size<LibC.FLock>()),
        ("offsetof(struct flock, l_type)", Offset<LibC.FLock>(nameof(LibC.FLock.Type))),
        ("offsetof(struct flock, l_whence)", Offset<LibC.FLock>(nameof(LibC.FLock.Whence))),
        ("offsetof(struct flock, l_start)", Offset<LibC.FLock>(nameof(LibC.FLock.Start))),
        ("offsetof(struct flock, l_len)", Offset<LibC.FLock>(nameof(LibC.FLock.Length))),
        ("offsetof(struct flock, l_pid)", Offset<LibC.FLock>(nameof(LibC.FLock.Pid))),
    ];

    private static readonly (string C, long CSharp)[] Constants =
    [
        ("PROT_READ", LibC.ProtRead), ("PROT_WRITE", LibC.ProtWrite),
        ("MAP_SHARED", LibC.MapShared), ("MAP_PRIVATE", LibC.MapPrivate), ("MAP_ANONYMOUS", LibC.MapAnonymous),
        ("MADV_POPULATE_WRITE", LibC.MadvPopulateWrite),
        ("AT_FDCWD", LibC.AtCurrentDirectory), ("AT_EMPTY_PATH", LibC.AtEmptyPath), ("AT_SYMLINK_NOFOLLOW", LibC.AtSymlinkNoFollow),
        ("STATX_BASIC_STATS", LibC.StatxBasicStats), ("STATX_TYPE", LibC.StatxType), ("STATX_SIZE", LibC.StatxSize),
        ("F_OFD_SETLK", LibC.FOfdSetLk), ("F_RDLCK", LibC.FRdLck), ("F_WRLCK", LibC.FWrLck),
        ("O_RDONLY", LibC.OpenReadOnly), ("O_NONBLOCK", LibC.OpenNonBlocking), ("O_CLOEXEC", LibC.OpenCloseOnExec),
        ("S_IFMT", LibC.FileTypeMask), ("S_IFIFO", LibC.FileTypeFifo), ("S_IFCHR", LibC.FileTypeCharacterDevice),
        ("S_IFDIR", LibC.FileTypeDirectory), ("S_IFBLK", LibC.FileTypeBlockDevice), ("S_IFREG", LibC.FileTypeRegular),
        ("S_IFLNK", LibC.FileTypeSymbolicLink), ("S_IFSOCK", LibC.FileTypeSocket),
    ];

    private const string Includes = "#include <sys/stat.h>\n#include <fcntl.h>\n#include <sys/mman.h>";

    [Fact]
    public void StructLayouts_MatchInstalledHeaders() =>
        CLayoutProgram.AssertAllMatch(Layout, Includes, ["/usr/include/fcntl.h"], "gcc libc6-dev");

    [Fact]
    public void Constants_MatchInstalledHeaders() =>
        CLayoutProgram.AssertAllMatch(Constants, Includes, ["/usr/include/fcntl.h"], "gcc libc6-dev");
}
