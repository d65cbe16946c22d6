using System.Runtime.InteropServices;
using Fabric.Transport;

namespace Fabric.MemoryPool.Bank;

/// <summary>
/// Host-memory placement for a bank: a <see cref="HostRegionStore"/> whose regions are private anonymous mappings,
/// pre-faulted by the kernel in one call (far cheaper than one fault per 4 KiB page while loading), and bound to a NUMA
/// node before they are faulted in when one is asked for. Transparent huge pages are not advised: where the kernel
/// compacts on the fault path (defrag=madvise, as on the development VMs) they made first touch 2.7x slower.
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
        var populate = numaNode is null ? LibC.MapPopulate : 0;
        var address = LibC.mmap(0, bytes, LibC.ProtRead | LibC.ProtWrite, LibC.MapPrivate | LibC.MapAnonymous | populate, -1, 0);
        if (address == LibC.MapFailed)
            throw new FabricException($"Could not reserve {length} bytes of host memory for the bank (errno {Marshal.GetLastPInvokeError()}).");
        if (numaNode is { } node)
        {
            NumaPlacement.Bind(address, bytes, node);
            // Fault the pages in on the bound node now; kernels before 5.14 refuse the advice and fault them on first write.
            LibC.madvise(address, bytes, LibC.MadvPopulateWrite);
        }
        return address;
    }
}
