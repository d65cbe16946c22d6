using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Fabric.Common.Native;

namespace Fabric.Transport.Tests;

/// <summary>
/// Proves the libc binding's struct layouts and constants (statx, struct flock, msghdr/cmsghdr/iovec, open, mmap,
/// madvise, file types, memfd and seals, SCM_RIGHTS)
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
        ("sizeof(struct iovec)", Size<LibC.IoVector>()),
        ("offsetof(struct iovec, iov_base)", Offset<LibC.IoVector>(nameof(LibC.IoVector.Base))),
        ("offsetof(struct iovec, iov_len)", Offset<LibC.IoVector>(nameof(LibC.IoVector.Length))),
        ("sizeof(struct msghdr)", Size<LibC.MessageHeader>()),
        ("offsetof(struct msghdr, msg_name)", Offset<LibC.MessageHeader>(nameof(LibC.MessageHeader.Name))),
        ("offsetof(struct msghdr, msg_namelen)", Offset<LibC.MessageHeader>(nameof(LibC.MessageHeader.NameLength))),
        ("offsetof(struct msghdr, msg_iov)", Offset<LibC.MessageHeader>(nameof(LibC.MessageHeader.Vectors))),
        ("offsetof(struct msghdr, msg_iovlen)", Offset<LibC.MessageHeader>(nameof(LibC.MessageHeader.VectorCount))),
        ("offsetof(struct msghdr, msg_control)", Offset<LibC.MessageHeader>(nameof(LibC.MessageHeader.Control))),
        ("offsetof(struct msghdr, msg_controllen)", Offset<LibC.MessageHeader>(nameof(LibC.MessageHeader.ControlLength))),
        ("offsetof(struct msghdr, msg_flags)", Offset<LibC.MessageHeader>(nameof(LibC.MessageHeader.Flags))),
        ("sizeof(struct cmsghdr)", Size<LibC.ControlMessageHeader>()),
        ("offsetof(struct cmsghdr, cmsg_len)", Offset<LibC.ControlMessageHeader>(nameof(LibC.ControlMessageHeader.Length))),
        ("offsetof(struct cmsghdr, cmsg_level)", Offset<LibC.ControlMessageHeader>(nameof(LibC.ControlMessageHeader.Level))),
        ("offsetof(struct cmsghdr, cmsg_type)", Offset<LibC.ControlMessageHeader>(nameof(LibC.ControlMessageHeader.Type))),
        ("(char *)CMSG_DATA((struct cmsghdr *)0) - (char *)0", LibC.ControlMessageHeader.DataOffset),
        ("CMSG_SPACE(sizeof(int))", LibC.ControlMessageHeader.OneDescriptorSpace),
        ("CMSG_LEN(sizeof(int))", LibC.ControlMessageHeader.OneDescriptorLength),
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
        ("MFD_CLOEXEC", LibC.MemfdCloseOnExec), ("MFD_ALLOW_SEALING", LibC.MemfdAllowSealing),
        ("F_ADD_SEALS", LibC.FAddSeals), ("F_GET_SEALS", LibC.FGetSeals), ("F_SEAL_SEAL", LibC.SealSeal),
        ("F_SEAL_SHRINK", LibC.SealShrink), ("F_SEAL_GROW", LibC.SealGrow), ("F_SEAL_WRITE", LibC.SealWrite),
        ("F_SEAL_FUTURE_WRITE", LibC.SealFutureWrite),
        ("SOL_SOCKET", LibC.SolSocket), ("SCM_RIGHTS", LibC.ScmRights), ("MSG_DONTWAIT", LibC.MsgDontWait),
        ("MSG_NOSIGNAL", LibC.MsgNoSignal), ("MSG_CMSG_CLOEXEC", LibC.MsgControlCloseOnExec),
    ];

    private const string Includes = "#include <sys/stat.h>\n#include <fcntl.h>\n#include <sys/mman.h>\n#include <sys/socket.h>\n#include <sys/uio.h>";

    [Fact]
    public void StructLayouts_MatchInstalledHeaders() =>
        CLayoutProgram.AssertAllMatch(Layout, Includes, ["/usr/include/fcntl.h"], "gcc libc6-dev");

    [Fact]
    public void Constants_MatchInstalledHeaders() =>
        CLayoutProgram.AssertAllMatch(Constants, Includes, ["/usr/include/fcntl.h"], "gcc libc6-dev");
}
