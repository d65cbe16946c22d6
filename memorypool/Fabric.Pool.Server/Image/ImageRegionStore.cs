using Fabric.Common.Native;
using Fabric.Transport;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Pool.Server.Image;

/// <summary>
/// Regions that lie in a bank image file: one shared mapping of the whole file (read-only to serve it, writable while
/// converting), each region at its offset in the file. No copy: reads are served from the page cache. Owns the
/// mapping, not the file handle.
/// </summary>
public sealed unsafe class ImageRegionStore : RegionStore
{
    private readonly MappedMemory _mapping;

    /// <summary>Maps <paramref name="fileBytes"/> bytes of <paramref name="file"/> and exposes each (spec, offset) as a region.</summary>
    public ImageRegionStore(SafeFileHandle file, long fileBytes, IEnumerable<(RegionSpec Spec, long Offset)> regions, bool writable)
    {
        _mapping = MappedMemory.Map(file, fileBytes, writable);
        foreach (var (spec, offset) in regions)
        {
            if (offset < 0 || offset > fileBytes - spec.Length)
            {
                _mapping.Dispose();
                throw new ArgumentOutOfRangeException(nameof(regions), $"Region {spec.Id} lies outside the mapped file.");
            }
            Add(spec, _mapping.Pointer + offset);
        }
    }

    /// <summary>The whole mapping (header, regions and catalog).</summary>
    public MappedMemory Mapping => _mapping;

    protected override void Dispose(bool disposing) => _mapping.Dispose();
}
