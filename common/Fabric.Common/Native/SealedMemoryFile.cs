using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Common.Native;

/// <summary>
/// Anonymous memory files (memfd) whose size is sealed: nobody, not even their creator, can shrink or grow them, so a
/// mapping of one never faults with SIGBUS the way a mapping of a truncated file does.
/// </summary>
public static class SealedMemoryFile
{
    /// <summary>
    /// Creates a memory file of <paramref name="length"/> bytes (zeroed) and seals its size
    /// (F_SEAL_SHRINK | F_SEAL_GROW). The caller owns the handle. Throws <see cref="IOException"/> with errno text.
    /// </summary>
    public static SafeFileHandle Create(string name, long length)
    {
        var fd = LibC.MemfdCreate(name, LibC.MemfdCloseOnExec | LibC.MemfdAllowSealing);
        if (fd < 0)
            throw new IOException($"memfd_create failed: {Marshal.GetLastPInvokeErrorMessage()}");
        var file = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            if (LibC.Ftruncate(file, length) != 0)
                throw new IOException($"Cannot size a memory file to {length} bytes: {Marshal.GetLastPInvokeErrorMessage()}");
            AddSeals(file, LibC.SealShrink | LibC.SealGrow);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Seals the contents too: no new writable mapping and no write(2) (F_SEAL_FUTURE_WRITE; mappings that exist keep
    /// working), and no seal may change after this (F_SEAL_SEAL).
    /// </summary>
    public static void SealContents(SafeFileHandle file) => AddSeals(file, LibC.SealFutureWrite | LibC.SealSeal);

    /// <summary>The seals of <paramref name="file"/> (F_GET_SEALS); 0 for a file that cannot be sealed.</summary>
    public static int Seals(SafeFileHandle file)
    {
        var seals = LibC.FcntlInt(file, LibC.FGetSeals, 0);
        return seals < 0 ? 0 : seals;
    }

    private static void AddSeals(SafeFileHandle file, int seals)
    {
        if (LibC.FcntlInt(file, LibC.FAddSeals, seals) != 0)
            throw new IOException($"Cannot seal a memory file: {Marshal.GetLastPInvokeErrorMessage()}");
    }
}
