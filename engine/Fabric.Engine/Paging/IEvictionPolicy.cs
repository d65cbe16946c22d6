namespace Fabric.Engine.Paging;

/// <summary>
/// Chooses which resident expert leaves when a slot is needed. Plain logic: told of every use, fill and eviction,
/// and asked for a victim among the slots that <see cref="SlotTable.IsEvictable"/> allows.
/// </summary>
public interface IEvictionPolicy
{
    /// <summary>The name used on the command line and in traces.</summary>
    string Name { get; }

    /// <summary>An expert was used (hit or miss) at <paramref name="accessIndex"/>; it sits in <paramref name="slot"/>.</summary>
    void OnUse(int slot, ExpertKey key, long accessIndex);

    /// <summary>A fetch of <paramref name="key"/> into <paramref name="slot"/> was begun (by demand or prefetch).</summary>
    void OnFill(int slot, ExpertKey key, long accessIndex, bool prefetched);

    /// <summary><paramref name="key"/> left <paramref name="slot"/>.</summary>
    void OnEvict(int slot, ExpertKey key);

    /// <summary>Returns an evictable slot, or -1 when none is evictable.</summary>
    int ChooseVictim(SlotTable slots, in EvictionContext context);

    /// <summary>A visit of <paramref name="layer"/> begins: told once per <see cref="ExpertPager.BeginLayer"/>, before its uses.</summary>
    void OnLayerVisit(int layer);

    /// <summary>Told the number of slots once, before any use, so that a policy can size its state then.</summary>
    void Reserve(int slots)
    {
    }
}
