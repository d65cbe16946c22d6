namespace Fabric.Engine.Paging;

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

    public virtual void OnLayerVisit(int layer)
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
