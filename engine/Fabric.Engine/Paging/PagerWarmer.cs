namespace Fabric.Engine.Paging;

/// <summary>
/// Reads, without changing anything, what a pager's coming <see cref="ExpertPager.BeginLayer"/> and the evictions that
/// make room for it will touch, so that it is in the processor's cache by then. For a driver that keeps many pagers
/// and has a core idle before their turns come (the simulator); the pager works the same whether or not it is warmed.
/// </summary>
/// <param name="pager">The pager to read; the warmer owns nothing.</param>
/// <param name="policy">The pager's policy, when it can warm its own state; else only the pager's state is read.</param>
public sealed class PagerWarmer(ExpertPager pager, IWarmablePolicy? policy)
{
    /// <summary>
    /// Warms for a visit of <paramref name="layer"/> routed to <paramref name="experts"/> (out of range: nothing is
    /// read). Returns a value that depends on what was read, so that the reads are not optimised away.
    /// </summary>
    public int Warm(int layer, ReadOnlySpan<int> experts)
    {
        if ((uint)layer >= (uint)pager.Layers)
            return 0;
        var slots = pager.Slots;
        var stats = pager.Stats;
        Span<int> used = stackalloc int[Math.Min(experts.Length, 64)];
        var count = 0;
        var pinned = pager.PinnedSlots;
        var sum = pinned.Length + pager.DeferredCount + pager.CurrentLayer + slots.Occupied + (int)stats.LayerHits[layer] + (int)stats.LayerMisses[layer]
            + (pager.Prefetcher.WantsRouterPrediction ? 1 : 0);
        foreach (var e in experts)
        {
            if ((uint)e >= (uint)pager.ExpertsPerLayer || count == used.Length)
                continue;
            var slot = slots.SlotOf(new ExpertKey(layer, e));
            if (slot >= 0)
            {
                sum += (int)slots.StateOf(slot);
                used[count++] = slot;
            }
        }
        foreach (var slot in pinned)
            sum += (int)slots.StateOf(slot);
        return policy is null ? sum : sum + policy.Warm(slots, used[..count]);
    }
}
