using Fabric.Common;
using Fabric.Common.Native;

namespace Fabric.Transport.Shm;

/// <summary>
/// Regions in a shared mapping that clients on this machine (or hosts sharing a CXL device) map read-only and read
/// by load/store. <c>PATH</c> is a file (created fresh, mode 0600, replacing a stale one) or an existing
/// <c>/dev/daxX.Y</c> device. A header at offset 0 holds magic, version, a random generation, the region table
/// (id, offset, length, a hash of the key) and the path of the server's control socket. The store owns the mapping;
/// disposing it unmaps and deletes the file (a DAX device is left alone, its header cleared).
/// </summary>
public sealed unsafe class ShmRegionStore : RegionStore
{
    private readonly FileStream _file;
    private readonly MappedMemory _mapping;

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

        _file = Open(path, IsDax, ref next);
        MappedBytes = next;
        try
        {
            _mapping = MappedMemory.Map(_file.SafeFileHandle, MappedBytes, writable: true);
            var header = new Span<byte>(_mapping.Pointer, (int)dataOffset);
            *(ulong*)_mapping.Pointer = 0;
            ShmHeader.Write(header, Generation, MappedBytes, dataOffset, Alignment, ControlPath, rows);
            for (var i = 0; i < specs.Count; i++)
            {
                var region = Add(specs[i], _mapping.Pointer + rows[i].Offset);
                if (IsDax)
                    System.Runtime.InteropServices.NativeMemory.Clear(region.BaseAddress, (nuint)region.Length);
            }
            ShmHeader.Publish(_mapping.Pointer);
        }
        catch
        {
            _mapping?.Dispose();
            _file.Dispose();
            if (!IsDax)
                File.Delete(path);
            throw;
        }
    }

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

    private static FileStream Open(string path, bool dax, ref long bytes)
    {
        try
        {
            if (dax)
            {
                var size = ShmPaths.DaxSize(path);
                if (size < bytes)
                    throw new EndpointException($"Cannot serve shm://{path}: the device holds {size} bytes but the regions need {bytes}.");
                bytes = size;
                return new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            }
            // A stale file may still be mapped by old clients; unlinking it (rather than truncating) keeps their pages valid.
            File.Delete(path);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            var file = new FileStream(path, options);
            file.SetLength(bytes);
            return file;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EndpointException($"Cannot create shm://{path}: {e.Message.TrimEnd('.')}.", e);
        }
    }

    private static long AlignUp(long value, long alignment) => (value + alignment - 1) & ~(alignment - 1);

    protected override void Dispose(bool disposing)
    {
        if (_mapping is { IsClosed: false })
        {
            *(ulong*)_mapping.Pointer = 0;
            _mapping.Dispose();
        }
        _file?.Dispose();
        if (!IsDax)
        {
            try
            {
                File.Delete(Path);
            }
            catch (IOException)
            {
            }
        }
    }
}
