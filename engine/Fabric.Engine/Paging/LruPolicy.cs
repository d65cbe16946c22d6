namespace Fabric.Engine.Paging;

/// <summary>
/// Least recently used: evicts the expert whose last use is oldest (ties to the lower slot, as every
/// <see cref="ScoredPolicy"/>). The slots are kept in a list ordered by (last use, slot), so the victim is the first
/// evictable slot from the front: O(1) in practice, where a scan of every slot costs O(slots) per eviction. The
/// slots skipped are the few that are pinned, loading or protected by the prefetch under way.
/// </summary>
public sealed class LruPolicy : ScoredPolicy
{
    private int[] _previous = [];
    private int[] _next = [];
    private bool[] _linked = [];
    private int _head = -1;
    private int _tail = -1;

    public override string Name => "lru";

    public override void OnUse(int slot, ExpertKey key, long accessIndex)
    {
        base.OnUse(slot, key, accessIndex);
        MoveToItsPlace(slot);
    }

    public override void OnFill(int slot, ExpertKey key, long accessIndex, bool prefetched)
    {
        base.OnFill(slot, key, accessIndex, prefetched);
        MoveToItsPlace(slot);
    }

    public override int ChooseVictim(SlotTable slots, in EvictionContext context)
    {
        for (var s = _head; s >= 0; s = _next[s])
        {
            if (slots.IsEvictable(s))
                return s;
        }
        return -1;
    }

    protected override double Score(int slot, ExpertKey key, SlotTable slots, in EvictionContext context) => 0;

    // Uses come in order, so the place is nearly always the back; a deferred expert's older use walks further in.
    private void MoveToItsPlace(int slot)
    {
        Grow(slot);
        if (_linked[slot])
            Unlink(slot);
        var after = _tail;
        while (after >= 0 && Follows(after, slot))
            after = _previous[after];
        var before = after < 0 ? _head : _next[after];
        _previous[slot] = after;
        _next[slot] = before;
        if (after < 0)
            _head = slot;
        else
            _next[after] = slot;
        if (before < 0)
            _tail = slot;
        else
            _previous[before] = slot;
        _linked[slot] = true;
    }

    private bool Follows(int a, int b)
    {
        var (useA, useB) = (LastUse(a), LastUse(b));
        return useA > useB || (useA == useB && a > b);
    }

    private void Unlink(int slot)
    {
        var (p, n) = (_previous[slot], _next[slot]);
        if (p < 0)
            _head = n;
        else
            _next[p] = n;
        if (n < 0)
            _tail = p;
        else
            _previous[n] = p;
        _linked[slot] = false;
    }

    private void Grow(int slot)
    {
        if (slot < _linked.Length)
            return;
        var size = Math.Max(slot + 1, _linked.Length * 2);
        Array.Resize(ref _previous, size);
        Array.Resize(ref _next, size);
        Array.Resize(ref _linked, size);
    }
}
