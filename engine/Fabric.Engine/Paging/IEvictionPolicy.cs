namespace Fabric.Engine.Paging;

/// <summary>Where the pager is when it asks a policy for a victim.</summary>
/// <param name="CurrentLayer">The layer being computed (or the last one begun).</param>
/// <param name="AccessIndex">The number of expert uses recorded so far (the position in the access sequence).</param>
public readonly record struct EvictionContext(int CurrentLayer, long AccessIndex);

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

    /// <summary>Told the number of slots once, before any use, so that a policy can size its state then.</summary>
    void Reserve(int slots)
    {
    }

    /// <summary>
    /// Reads, without changing anything, the state coming uses of <paramref name="usedSlots"/> and a coming choice of
    /// victim will touch, so that it is in the processor's cache then (see <see cref="ExpertPager.Warm"/>). Returns a
    /// value that depends on what was read.
    /// </summary>
    int Warm(SlotTable slots, ReadOnlySpan<int> usedSlots) => 0;
}

/// <summary>A policy that ranks slots by a score and evicts the lowest, ties broken by the older last use.</summary>
public abstract class ScoredPolicy : IEvictionPolicy
{
    private long[] _lastUse = [];

    public abstract string Name { get; }

    public virtual void OnUse(int slot, ExpertKey key, long accessIndex) => LastUse(slot) = accessIndex;

    public virtual void OnFill(int slot, ExpertKey key, long accessIndex, bool prefetched) => LastUse(slot) = accessIndex;

    public virtual void OnEvict(int slot, ExpertKey key)
    {
    }

    public virtual int ChooseVictim(SlotTable slots, in EvictionContext context)
    {
        var best = -1;
        var bestScore = double.PositiveInfinity;
        var bestTie = long.MaxValue;
        for (var s = 0; s < slots.Count; s++)
        {
            if (!slots.IsEvictable(s))
                continue;
            var score = Score(s, slots.KeyOf(s), slots, context);
            var tie = LastUse(s);
            if (score < bestScore || (score == bestScore && tie < bestTie))
            {
                best = s;
                bestScore = score;
                bestTie = tie;
            }
        }
        return best;
    }

    /// <summary>Lower scores are evicted first.</summary>
    protected abstract double Score(int slot, ExpertKey key, SlotTable slots, in EvictionContext context);

    protected ref long LastUse(int slot)
    {
        if (slot >= _lastUse.Length)
            Array.Resize(ref _lastUse, Math.Max(slot + 1, _lastUse.Length * 2));
        return ref _lastUse[slot];
    }
}
