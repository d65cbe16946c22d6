using Fabric.Common;
using Fabric.Common.Native;

namespace Fabric.Transport.Shm;

/// <summary>Serving regions that already lie in a file (a bank image on /dev/shm or a DAX device) in place.</summary>
public sealed unsafe partial class ShmRegionStore
{
    private readonly MappedMemory? _headerSlot;

    /// <summary>
    /// Serves regions whose bytes already lie in the file or DAX device at <paramref name="path"/>, each at its offset,
    /// without copying them: the file is mapped read-only and shared, and only its first
    /// <paramref name="headerSlotBytes"/> (kept free by whoever wrote the file) are mapped writable for the shm header.
    /// The store write-locks the file for its lifetime (a file another live store holds is refused), and on dispose
    /// clears the header's magic and leaves the file in place.
    /// </summary>
    public static ShmRegionStore Adopt(string path, IReadOnlyList<(RegionSpec Spec, long Offset)> regions, int headerSlotBytes) =>
        new(path, regions, headerSlotBytes);

    private ShmRegionStore(string path, IReadOnlyList<(RegionSpec Spec, long Offset)> regions, int headerSlotBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(regions);
        Path = path;
        IsDax = ShmPaths.IsDax(path);
        ControlPath = ShmPaths.ControlSocket(path);
        if (System.Text.Encoding.UTF8.GetByteCount(ControlPath) > ShmPaths.MaxSocketPathBytes)
            throw new EndpointException($"Cannot serve shm://{path}: its control socket path {ControlPath} is longer than {ShmPaths.MaxSocketPathBytes} bytes.");
        if (ShmHeader.HeaderBytes(regions.Count) > headerSlotBytes)
            throw new EndpointException($"Cannot serve shm://{path} in place: its {regions.Count} regions need a larger header than the {headerSlotBytes} bytes kept for it.");
        Alignment = IsDax ? ShmPaths.DaxAlignment : NativeBuffer.PageBytes;
        Generation = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        try
        {
            _file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EndpointException($"Cannot open shm://{path}: {e.Message.TrimEnd('.')}.", e);
        }
        try
        {
            if (!TryLock(_file, LibC.FWrLck))
                throw InUse(path);
            RefuseNonSocket(ControlPath);
            MappedBytes = IsDax ? ShmPaths.DaxSize(path) : _file.Length;
            var rows = new List<ShmRegionEntry>(regions.Count);
            foreach (var (spec, offset) in regions)
            {
                if (offset < headerSlotBytes || spec.Length < 0 || offset > MappedBytes - spec.Length)
                    throw new EndpointException($"Cannot serve shm://{path} in place: region {spec.Id} lies outside the file.");
                rows.Add(new ShmRegionEntry(spec.Id, offset, spec.Length, ShmHeader.HashKey(spec.Key, Generation)));
            }
            _identity = FileIdentity.Of(_file.SafeFileHandle);
            _mapping = MappedMemory.Map(_file.SafeFileHandle, MappedBytes, writable: false);
            _headerSlot = MappedMemory.Map(_file.SafeFileHandle, IsDax ? ShmPaths.DaxAlignment : headerSlotBytes, writable: true);
            *(ulong*)_headerSlot.Pointer = 0;
            ShmHeader.Write(new Span<byte>(_headerSlot.Pointer, headerSlotBytes), Generation, MappedBytes, headerSlotBytes, Alignment, ControlPath, rows, sealedMemory: false);
            for (var i = 0; i < regions.Count; i++)
                Add(regions[i].Spec, _mapping.Pointer + regions[i].Offset);
            ShmHeader.Publish(_headerSlot.Pointer);
        }
        catch
        {
            _headerSlot?.Dispose();
            _mapping?.Dispose();
            _file.Dispose();
            throw;
        }
    }

    /// <summary>Whether this store serves a file in place (<see cref="Adopt"/>): the file stays, only its header is cleared.</summary>
    public bool IsAdopted => _headerSlot is not null;

    private bool DisposeAdopted()
    {
        if (_headerSlot is null)
            return false;
        if (!_headerSlot.IsClosed)
        {
            *(ulong*)_headerSlot.Pointer = 0;
            _headerSlot.Dispose();
        }
        _mapping?.Dispose();
        _file?.Dispose();
        return true;
    }
}
