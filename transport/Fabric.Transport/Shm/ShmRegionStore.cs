using System.Runtime.InteropServices;
using Fabric.Common;
using Fabric.Common.Native;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Transport.Shm;

/// <summary>
/// Regions in a shared mapping that clients on this machine (or hosts sharing a CXL device) map read-only and read
/// by load/store. For <c>/dev/shm/NAME</c> (any file path) the regions live in a sealed memory file (memfd whose size
/// can never change, so no reader's mapping can fault with SIGBUS) that the server hands to each client over its
/// control socket; <c>PATH</c> (created fresh, mode 0600) holds only the header, which names that socket. A
/// <c>/dev/daxX.Y</c> device (which cannot be truncated) holds header and regions itself. The header at offset 0
/// holds magic, version, a random generation, the region table (id, offset, length, a hash of the key) and the path
/// of the server's control socket. The store holds a write lock (an open-file-description lock) on the
/// file or device for its lifetime: a path that another live store holds is refused, a file that does not carry the
/// header's magic is refused, and only a stale bank whose owner is gone is replaced (by renaming a complete new file
/// over it). The store owns the mapping; disposing it unmaps and deletes the file if PATH is still the file it
/// created (a DAX device is left alone, its header cleared).
/// </summary>
public sealed unsafe partial class ShmRegionStore : RegionStore
{
    private readonly FileStream _file;
    private readonly SafeFileHandle? _memory;
    private readonly MappedMemory _mapping;
    private readonly FileIdentity _identity;

    /// <summary>Creates the file at <paramref name="path"/> (or opens the DAX device) and lays out <paramref name="regions"/>, zeroed.</summary>
    public ShmRegionStore(string path, IEnumerable<RegionSpec> regions)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(regions);
        var specs = regions.ToList();
        Path = path;
        IsDax = ShmPaths.IsDax(path);
        ControlPath = ShmPaths.ControlSocket(path);
        if (System.Text.Encoding.UTF8.GetByteCount(ControlPath) > ShmPaths.MaxSocketPathBytes)
            throw new EndpointException($"Cannot serve shm://{path}: its control socket path {ControlPath} is longer than {ShmPaths.MaxSocketPathBytes} bytes.");
        Alignment = IsDax ? ShmPaths.DaxAlignment : NativeBuffer.PageBytes;
        Generation = (ulong)Random.Shared.NextInt64(1, long.MaxValue);

        var dataOffset = AlignUp(ShmHeader.HeaderBytes(specs.Count), Alignment);
        var rows = new List<ShmRegionEntry>(specs.Count);
        var next = dataOffset;
        foreach (var spec in specs)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(spec.Length);
            rows.Add(new ShmRegionEntry(spec.Id, next, spec.Length, ShmHeader.HashKey(spec.Key, Generation)));
            next = AlignUp(next + Math.Max(spec.Length, 1), Alignment);
        }
        MappedBytes = next;

        using var stale = IsDax ? null : ClaimStale(path);
        RefuseNonSocket(ControlPath);
        string? temporary = null;
        if (IsDax)
        {
            _file = OpenDax(path, ref next);
        }
        else
        {
            temporary = $"{path}.new-{Environment.ProcessId}-{Generation:x16}";
            _file = Create(path, temporary);
        }
        _identity = FileIdentity.Of(_file.SafeFileHandle);
        MappedBytes = next;
        try
        {
            if (!IsDax)
                _memory = CreateMemory(path, MappedBytes);
            _mapping = MappedMemory.Map(_memory ?? _file.SafeFileHandle, MappedBytes, writable: true);
            if (_memory is not null)
                SealedMemoryFile.SealContents(_memory);
            var header = new Span<byte>(_mapping.Pointer, (int)dataOffset);
            *(ulong*)_mapping.Pointer = 0;
            ShmHeader.Write(header, Generation, MappedBytes, dataOffset, Alignment, ControlPath, rows, sealedMemory: _memory is not null);
            for (var i = 0; i < specs.Count; i++)
            {
                var region = Add(specs[i], _mapping.Pointer + rows[i].Offset);
                if (IsDax)
                    System.Runtime.InteropServices.NativeMemory.Clear(region.BaseAddress, (nuint)region.Length);
            }
            ShmHeader.Publish(_mapping.Pointer);
            if (temporary is not null)
            {
                // The file at PATH is the header alone, magic included; the rename publishes it whole.
                RandomAccess.Write(_file.SafeFileHandle, header, 0);
                MoveIntoPlace(temporary, path, stale);
                temporary = null;
            }
        }
        catch (IOException e) when (temporary is not null)
        {
            _mapping?.Dispose();
            _memory?.Dispose();
            File.Delete(temporary);
            _file.Dispose();
            throw new EndpointException($"Cannot create shm://{path}: {e.Message.TrimEnd('.')}.", e);
        }
        catch
        {
            _mapping?.Dispose();
            _memory?.Dispose();
            if (temporary is not null)
                File.Delete(temporary);
            _file.Dispose();
            throw;
        }
    }

    private static SafeFileHandle CreateMemory(string path, long bytes)
    {
        try
        {
            return SealedMemoryFile.Create("fabric-bank:" + System.IO.Path.GetFileName(path), bytes);
        }
        catch (IOException e)
        {
            throw new EndpointException($"Cannot create shm://{path}: {e.Message.TrimEnd('.')}.", e);
        }
    }

    /// <summary>
    /// The sealed memory file that holds the regions, which the server passes to each client; null for a DAX device
    /// (clients map the device itself).
    /// </summary>
    internal SafeFileHandle? MemoryFile => _memory;

    /// <summary>The file or device path (the endpoint is <c>shm://</c> + this).</summary>
    public string Path { get; }

    /// <summary>The Unix socket the server's control channel listens on; written into the header.</summary>
    public string ControlPath { get; }

    /// <summary>Random per creation; clients compare it with the server's handshake to catch a recreated file.</summary>
    public ulong Generation { get; }

    /// <summary>Alignment of every region in bytes: 4 KiB for files, 2 MiB for DAX devices.</summary>
    public int Alignment { get; }

    /// <summary>Whether <see cref="Path"/> is a /dev/dax device.</summary>
    public bool IsDax { get; }

    /// <summary>Bytes mapped: header plus regions (for DAX, the whole device).</summary>
    public long MappedBytes { get; }

    public FabricEndpoint Endpoint => new("shm", "", 0, Path);

    private static FileStream OpenDax(string path, ref long bytes)
    {
        var size = ShmPaths.DaxSize(path);
        if (size < bytes)
            throw new EndpointException($"Cannot serve shm://{path}: the device holds {size} bytes but the regions need {bytes}.");
        bytes = size;
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EndpointException($"Cannot open shm://{path}: {e.Message.TrimEnd('.')}.", e);
        }
        if (!TryLock(file, LibC.FWrLck))
        {
            file.Dispose();
            throw InUse(path);
        }
        return file;
    }

    /// <summary>
    /// Null when nothing is at <paramref name="path"/>; otherwise the stale bank there, open and write-locked, so that no
    /// other store replaces it while this one is created. A file that a live store holds, or that is not a bank, is refused.
    /// </summary>
    private static FileStream? ClaimStale(string path)
    {
        if (!FileIdentity.TryOfPath(path, out var found))
            return null;
        if (!found.IsRegularFile)
            throw NotABank(path);
        FileStream probe;
        try
        {
            probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EndpointException($"Cannot open {path}: {e.Message.TrimEnd('.')}.", e);
        }
        using (probe)
        {
            if (!TryLock(probe, LibC.FRdLck))
                throw InUse(path);
            Span<byte> magic = stackalloc byte[8];
            if (RandomAccess.Read(probe.SafeFileHandle, magic, 0) < magic.Length || BitConverter.ToUInt64(magic) != ShmHeader.Magic)
                throw NotABank(path);
        }
        FileStream stale;
        try
        {
            stale = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EndpointException($"Cannot replace the stale bank {path}: {e.Message.TrimEnd('.')}.", e);
        }
        // Locked, and still the file at PATH: no live store holds it and none can replace it until this one has.
        if (!TryLock(stale, LibC.FWrLck) || !FileIdentity.TryOfPath(path, out var now) || now != FileIdentity.Of(stale.SafeFileHandle))
        {
            stale.Dispose();
            throw InUse(path);
        }
        return stale;
    }

    /// <summary>Creates <paramref name="temporary"/> beside <paramref name="path"/>, write-locked, for the header.</summary>
    private static FileStream Create(string path, string temporary)
    {
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite | FileShare.Delete };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            var file = new FileStream(temporary, options);
            try
            {
                if (!TryLock(file, LibC.FWrLck))
                    throw InUse(path);
                return file;
            }
            catch
            {
                file.Dispose();
                File.Delete(temporary);
                throw;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EndpointException($"Cannot create shm://{path}: {e.Message.TrimEnd('.')}.", e);
        }
    }

    /// <summary>
    /// Renames the complete new file over the stale bank (unlinking it, rather than truncating, keeps the pages of old
    /// clients that still map it valid), or into an empty place, never over a file that appeared meanwhile.
    /// </summary>
    private static void MoveIntoPlace(string temporary, string path, FileStream? stale)
    {
        try
        {
            File.Move(temporary, path, overwrite: stale is not null);
        }
        catch (IOException) when (stale is null && File.Exists(path))
        {
            throw InUse(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EndpointException($"Cannot create shm://{path}: {e.Message.TrimEnd('.')}.", e);
        }
    }

    /// <summary>A file at the control socket's path that is not a socket is someone else's; it is never deleted.</summary>
    internal static void RefuseNonSocket(string controlPath)
    {
        if (FileIdentity.TryOfPath(controlPath, out var found) && !found.IsSocket)
            throw new EndpointException($"{controlPath} exists and is not a socket; remove it or choose another path.");
    }

    private static unsafe bool TryLock(FileStream file, short type)
    {
        var request = new LibC.FLock { Type = type, Whence = 0, Start = 0, Length = 0 };
        if (LibC.FcntlLock(file.SafeFileHandle, LibC.FOfdSetLk, &request) == 0)
            return true;
        var errno = Marshal.GetLastPInvokeError();
        return errno is EAgain or EAccess
            ? false
            : throw new IOException($"fcntl(F_OFD_SETLK) failed with errno {errno}.");
    }

    private const int EAgain = 11;
    private const int EAccess = 13;

    private static EndpointException InUse(string path) =>
        new($"{path} is in use by a running pool; stop it or choose another path.");

    private static EndpointException NotABank(string path) =>
        new($"{path} exists and is not a Fabric shm bank; remove it or choose another path.");

    private static long AlignUp(long value, long alignment) => (value + alignment - 1) & ~(alignment - 1);

    protected override void Dispose(bool disposing)
    {
        if (DisposeAdopted())
            return;
        if (_mapping is { IsClosed: false })
        {
            *(ulong*)_mapping.Pointer = 0;
            _mapping.Dispose();
        }
        // Deleted while still locked, and only if PATH is still the file this store created.
        if (!IsDax && _file is not null && FileIdentity.TryOfPath(Path, out var now) && now == _identity)
        {
            try
            {
                File.Delete(Path);
            }
            catch (IOException)
            {
            }
        }
        _file?.Dispose();
        _memory?.Dispose();
    }
}
