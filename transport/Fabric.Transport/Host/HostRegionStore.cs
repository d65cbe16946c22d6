using System.Runtime.InteropServices;
using Fabric.Common;

namespace Fabric.Transport.Host;

/// <summary>
/// Regions in page-aligned host memory. By default each region is one <see cref="NativeMemory.AlignedAlloc"/> of
/// 4 KiB alignment; pass an allocator to place them elsewhere (a NUMA node). The store owns the memory and frees it
/// on dispose; the regions start zeroed only if the allocator zeroes them (the default one does).
/// </summary>
public sealed unsafe class HostRegionStore : RegionStore
{
    private readonly Action<nint, long> _free;
    private readonly List<(nint Pointer, long Length)> _blocks = [];

    /// <summary>Allocates every region in <paramref name="regions"/> with 4 KiB aligned, zeroed host memory.</summary>
    public HostRegionStore(IEnumerable<RegionSpec> regions)
        : this(regions, AllocateAligned, static (pointer, _) => NativeMemory.AlignedFree((void*)pointer))
    {
    }

    /// <summary>
    /// Allocates every region with <paramref name="allocate"/> (bytes → address, never zero) and frees it with
    /// <paramref name="free"/> (address, bytes) on dispose.
    /// </summary>
    public HostRegionStore(IEnumerable<RegionSpec> regions, Func<long, nint> allocate, Action<nint, long> free)
    {
        ArgumentNullException.ThrowIfNull(regions);
        ArgumentNullException.ThrowIfNull(allocate);
        _free = free ?? throw new ArgumentNullException(nameof(free));
        try
        {
            foreach (var spec in regions)
            {
                ArgumentOutOfRangeException.ThrowIfNegative(spec.Length);
                var pointer = allocate(spec.Length);
                if (pointer == 0)
                    throw new OutOfMemoryException($"Could not allocate {spec.Length} bytes for region {spec.Id}.");
                _blocks.Add((pointer, spec.Length));
                Add(spec, (byte*)pointer);
            }
        }
        catch
        {
            Dispose(true);
            throw;
        }
    }

    private static nint AllocateAligned(long length)
    {
        var pointer = NativeMemory.AlignedAlloc((nuint)Math.Max(1, length), NativeBuffer.PageBytes);
        NativeMemory.Clear(pointer, (nuint)length);
        return (nint)pointer;
    }

    protected override void Dispose(bool disposing)
    {
        foreach (var (pointer, length) in _blocks)
            _free(pointer, length);
        _blocks.Clear();
    }
}
