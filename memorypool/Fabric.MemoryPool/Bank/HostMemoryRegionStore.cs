using System.Runtime.InteropServices;
using Fabric.Transport;

namespace Fabric.MemoryPool.Bank;

/// <summary>
/// Regions in anonymous host memory (private mmap, transparent huge pages advised so that loading a large bank
/// takes few page faults), optionally bound to a NUMA node before the first touch. Owns the mappings.
/// </summary>
public sealed unsafe class HostMemoryRegionStore : RegionStore
{
    private readonly List<(nint Address, nuint Length)> _mappings = [];

    /// <summary>Maps one region per spec; with <paramref name="numaNode"/> the pages are bound to that node (libnuma).</summary>
    public HostMemoryRegionStore(IEnumerable<RegionSpec> specs, int? numaNode = null)
    {
        try
        {
            foreach (var spec in specs)
            {
                var length = (nuint)Math.Max(spec.Length, 1);
                var address = LibC.mmap(0, length, LibC.ProtRead | LibC.ProtWrite, LibC.MapPrivate | LibC.MapAnonymous, -1, 0);
                if (address == LibC.MapFailed)
                    throw new FabricException($"Could not reserve {spec.Length} bytes of host memory for region {spec.Id} (errno {Marshal.GetLastPInvokeError()}).");
                _mappings.Add((address, length));
                LibC.madvise(address, length, LibC.MadvHugePage);
                if (numaNode is { } node)
                    NumaPlacement.Bind(address, length, node);
                Add(spec, (byte*)address);
            }
        }
        catch
        {
            Dispose(true);
            throw;
        }
    }

    protected override void Dispose(bool disposing)
    {
        foreach (var (address, length) in _mappings)
            LibC.munmap(address, length);
        _mappings.Clear();
    }
}
