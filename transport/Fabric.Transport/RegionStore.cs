namespace Fabric.Transport;

/// <summary>
/// Owns the memory of a set of exported regions. Servers of any transport export the regions of a store; one store
/// may be served by several servers at once (the same bank over shm and tcp). Subclasses decide where the memory
/// lives: aligned host memory, a memory-mapped shm file or DAX device, a NUMA node.
/// </summary>
public abstract class RegionStore : IDisposable
{
    private readonly Dictionary<uint, ExportedRegion> _byId = [];
    private readonly List<ExportedRegion> _regions = [];

    /// <summary>Every region, in the order they were created.</summary>
    public IReadOnlyList<ExportedRegion> Regions => _regions;

    /// <summary>The region with <paramref name="id"/>, or null.</summary>
    public ExportedRegion? Find(uint id) => _byId.GetValueOrDefault(id);

    /// <summary>Total bytes of all regions.</summary>
    public long TotalBytes => _regions.Sum(r => r.Length);

    /// <summary>Records a region whose memory the subclass has set aside.</summary>
    protected unsafe ExportedRegion Add(RegionSpec spec, byte* baseAddress)
    {
        if (_byId.ContainsKey(spec.Id))
            throw new ArgumentException($"Region id {spec.Id} is used twice.", nameof(spec));
        var region = new ExportedRegion(spec.Id, spec.Key, baseAddress, spec.Length);
        _byId.Add(spec.Id, region);
        _regions.Add(region);
        return region;
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected abstract void Dispose(bool disposing);
}
