using Fabric.Common;

namespace Fabric.Pool.Protocol;

/// <summary>
/// One pool's catalog indexed once, so that finding a block is an array index (experts) or one dictionary lookup
/// (dense tensors) with the region key already resolved. Immutable; safe to share between threads.
/// </summary>
public sealed class CatalogIndex
{
    private readonly BlockLocation[] _experts;
    private readonly Dictionary<string, BlockLocation> _dense;
    private readonly int _expertsPerLayer;

    /// <summary>Indexes <paramref name="catalog"/>; a catalog that names a region it does not list throws <see cref="FabricException"/>.</summary>
    public CatalogIndex(CatalogReply catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        // MessagePack turns nil into null whatever the record's types say: a peer's catalog is checked, not trusted.
        if (catalog.Model is null || catalog.Regions is null || catalog.Experts is null || catalog.Dense is null
            || catalog.Regions.Contains(null) || catalog.Experts.Contains(null) || catalog.Dense.Any(d => d is null || d.Name is null))
            throw new FabricException("The pool's catalog is incomplete: a field it must carry is nil.");
        Catalog = catalog;
        var keys = new Dictionary<uint, ulong>(catalog.Regions.Length);
        foreach (var region in catalog.Regions)
            keys[region.Id] = region.Key;
        // Region 0 is no region: an expert a shard does not hold, or a merged reference that keeps only lengths and checksums.
        ulong KeyOf(uint id) => id == 0 ? 0 : keys.TryGetValue(id, out var key) ? key : throw new FabricException($"The catalog names region {id}, which it does not list.");

        _expertsPerLayer = catalog.Model.NumLocalExperts;
        _experts = new BlockLocation[catalog.Experts.Length];
        for (var i = 0; i < _experts.Length; i++)
        {
            var e = catalog.Experts[i];
            _experts[i] = new BlockLocation(e.RegionId, KeyOf(e.RegionId), e.Offset, e.Length, e.Checksum);
        }
        _dense = new Dictionary<string, BlockLocation>(catalog.Dense.Length, StringComparer.Ordinal);
        foreach (var d in catalog.Dense)
            _dense[d.Name] = new BlockLocation(d.RegionId, KeyOf(d.RegionId), d.Offset, d.Length, d.Checksum);
    }

    /// <summary>The catalog this index was built from.</summary>
    public CatalogReply Catalog { get; }

    /// <summary>Expert (<paramref name="layer"/>, <paramref name="expert"/>), or false when this pool has no such expert or does not hold it (length 0: another shard's).</summary>
    public bool TryGetExpert(int layer, int expert, out BlockLocation location)
    {
        var index = (layer * _expertsPerLayer) + expert;
        if (expert < 0 || expert >= _expertsPerLayer || (uint)index >= (uint)_experts.Length)
        {
            location = default;
            return false;
        }
        location = _experts[index];
        return location.Length > 0;
    }

    /// <summary>Dense tensor <paramref name="name"/>, or false when this pool has no such tensor.</summary>
    public bool TryGetDense(string name, out BlockLocation location) => _dense.TryGetValue(name, out location);
}
