using System.Runtime.InteropServices;
using Fabric.Common;
using Fabric.Common.Native;
using Fabric.Transport;
using Fabric.Transport.Host;

namespace Fabric.Pool.Server.Bank;

/// <summary>
/// Host-memory placement for a bank: a <see cref="HostRegionStore"/> whose regions are private anonymous mappings,
/// bound to a NUMA node when one is asked for; the bank pre-faults them (<see cref="Prefault"/>) before filling them.
/// Transparent huge pages are not advised: where the kernel compacts on the fault path (defrag=madvise, the default
/// on many kernels) they make first touch slower, not faster.
/// </summary>
public static class HostPlacement
{
    /// <summary>Creates the store; with <paramref name="numaNode"/> every region's pages are bound to that node (libnuma).</summary>
    public static HostRegionStore CreateStore(IEnumerable<RegionSpec> specs, int? numaNode = null)
    {
        if (numaNode is { } node)
            NumaPlacement.EnsureNode(node);
        return new HostRegionStore(specs, length => Map(length, numaNode), (address, length) => LibC.Munmap(address, (nuint)Math.Max(length, 1)));
    }

    private static nint Map(long length, int? numaNode)
    {
        var bytes = (nuint)Math.Max(length, 1);
        var address = LibC.Mmap(0, bytes, LibC.ProtRead | LibC.ProtWrite, LibC.MapPrivate | LibC.MapAnonymous, -1, 0);
        if (address == LibC.MapFailed)
            throw new FabricException($"Could not reserve {length} bytes of host memory for the bank (errno {Marshal.GetLastPInvokeError()}).");
        if (numaNode is { } node)
            NumaPlacement.Bind(address, bytes, node);
        return address;
    }

    /// <summary>
    /// Faults in every page of <paramref name="regions"/> where their memory policy places them (so after any NUMA
    /// binding), in 64 MiB pieces on <paramref name="threads"/> threads: far cheaper than one fault per 4 KiB page while
    /// loading (7x on a 2 GB bank here), and the kernel's page zeroing runs on every core. Kernels before 5.14 refuse
    /// the advice; the pages are then faulted in by the first write, as before.
    /// </summary>
    public static unsafe void Prefault(IReadOnlyList<ExportedRegion> regions, int threads)
    {
        const long Piece = 64L << 20;
        var pieces = regions.SelectMany(r => Enumerable.Range(0, (int)((r.Length + Piece - 1) / Piece))
            .Select(i => (Address: (nint)(r.BaseAddress + (i * Piece)), Length: (nuint)Math.Min(Piece, r.Length - (i * Piece))))).ToList();
        Parallel.ForEach(pieces, new ParallelOptions { MaxDegreeOfParallelism = threads }, p => LibC.Madvise(p.Address, p.Length, LibC.MadvPopulateWrite));
    }
}
