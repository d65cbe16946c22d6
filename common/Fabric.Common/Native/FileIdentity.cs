using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Common.Native;

/// <summary>What a path or descriptor is on disk (device, inode, type), from statx(2); two equal identities are the same file.</summary>
public readonly record struct FileIdentity(uint DeviceMajor, uint DeviceMinor, ulong Inode, ushort Mode)
{
    public bool IsSocket => (Mode & LibC.FileTypeMask) == LibC.FileTypeSocket;

    public bool IsRegularFile => (Mode & LibC.FileTypeMask) == LibC.FileTypeRegular;

    /// <summary>The identity of <paramref name="path"/> itself (a symbolic link is not followed); false when nothing is there.</summary>
    public static unsafe bool TryOfPath(string path, out FileIdentity identity)
    {
        LibC.StatxBuffer buffer;
        if (LibC.Statx(LibC.AtCurrentDirectory, path, LibC.AtSymlinkNoFollow, LibC.StatxBasicStats, &buffer) != 0)
        {
            identity = default;
            return false;
        }
        identity = Read(buffer);
        return true;
    }

    /// <summary>The identity of the file open in <paramref name="handle"/>.</summary>
    public static unsafe FileIdentity Of(SafeFileHandle handle)
    {
        LibC.StatxBuffer buffer;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (LibC.Statx((int)handle.DangerousGetHandle(), "", LibC.AtEmptyPath, LibC.StatxBasicStats, &buffer) != 0)
                throw new IOException($"statx failed with errno {Marshal.GetLastPInvokeError()}.");
            return Read(buffer);
        }
        finally
        {
            if (added)
                handle.DangerousRelease();
        }
    }

    private static FileIdentity Read(in LibC.StatxBuffer statx) => new(statx.DeviceMajor, statx.DeviceMinor, statx.Inode, (ushort)statx.Mode);
}
