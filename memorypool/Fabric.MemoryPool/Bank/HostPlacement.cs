using System.Runtime.InteropServices;
using Fabric.Transport;

namespace Fabric.MemoryPool.Bank;

/// <summary>
/// Host-memory placement for a bank: a <see cref="HostRegionStore"/> whose regions are private anonymous mappings
/// with transparent huge pages advised (so loading a large bank takes few page faults and no zeroing pass), bound to
/// a NUMA node before first touch when one is asked for.
/// </summary>
public static class HostPlacement
{
    /// <summary>Creates the store; with <paramref name="numaNode"/> every region's pages are bound to that node (libnuma).</summary>
    public static HostRegionStore CreateStore(IEnumerable<RegionSpec> specs, int? numaNode = null)
    {
        if (numaNode is { } node)
            NumaPlacement.EnsureNode(node);
        return new HostRegionStore(specs, length => Map(length, numaNode), (address, length) => LibC.munmap(address, (nuint)Math.Max(length, 1)));
    }

    private static nint Map(long length, int? numaNode)
    {
        var bytes = (nuint)Math.Max(length, 1);
        var address = LibC.mmap(0, bytes, LibC.ProtRead | LibC.ProtWrite, LibC.MapPrivate | LibC.MapAnonymous, -1, 0);
        if (address == LibC.MapFailed)
            throw new FabricException($"Could not reserve {length} bytes of host memory for the bank (errno {Marshal.GetLastPInvokeError()}).");
        LibC.madvise(address, bytes, LibC.MadvHugePage);
        if (numaNode is { } node)
            NumaPlacement.Bind(address, bytes, node);
        return address;
    }
}
