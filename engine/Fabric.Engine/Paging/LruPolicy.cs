namespace Fabric.Engine.Paging;

/// <summary>
/// Least recently used: evicts the expert whose last use is oldest (ties to the lower slot, as every
/// <see cref="ScoredPolicy"/>). The slots are kept in a list ordered by (last use, slot), so the victim is the first
/// evictable slot from the front: O(1) in practice, where a scan of every slot costs O(slots) per eviction. The
/// slots skipped are the few that are pinned, loading or protected by the prefetch under way. A slot's last use and
/// its two links share one 16-byte entry, so moving a slot touches one cache line of it.
/// </summary>
public sealed class LruPolicy : IEvictionPolicy, IWarmablePolicy
{
    private const int Unlinked = -2;
    private Entry[] _entries = [];
    private int _head = -1;
    private int _tail = -1;

    public string Name => "lru";

    public void OnUse(int slot, ExpertKey key, long accessIndex) => MoveToItsPlace(slot, accessIndex);

    public void OnFill(int slot, ExpertKey key, long accessIndex, bool prefetched) => MoveToItsPlace(slot, accessIndex);

    public void OnEvict(int slot, ExpertKey key)
    {
    }

    public void OnLayerVisit(int layer)
    {
    }

    // Sized with the pager, its entries lie beside the pager's own (a simulation keeps a thousand pagers, and what
    // one layer visit touches is then in fewer pages).
    public void Reserve(int slots) => Grow(slots - 1);

    /// <inheritdoc/>
    public int Warm(SlotTable slots, ReadOnlySpan<int> usedSlots)
    {
        // A use moves its slot to the back, out from between its neighbours.
        var sum = _tail < 0 ? 0 : _entries[_tail].Next;
        foreach (var slot in usedSlots)
        {
            if ((uint)slot >= (uint)_entries.Length)
                continue;
            var (p, n) = (_entries[slot].Previous, _entries[slot].Next);
            if (p >= 0)
                sum += _entries[p].Next;
            if (n >= 0)
                sum += _entries[n].Previous;
        }
        // The victim is nearly always the head or the one after it.
        var s = _head;
        for (var i = 0; i < 2 && s >= 0; i++)
        {
            sum += slots.StateOf(s) == SlotState.Empty ? 0 : slots.SlotOf(slots.KeyOf(s));
            s = _entries[s].Next;
        }
        return sum;
    }

    public int ChooseVictim(SlotTable slots, in EvictionContext context)
    {
        for (var s = _head; s >= 0; s = _entries[s].Next)
        {
            if (slots.IsEvictable(s))
                return s;
        }
        return -1;
    }

    // Uses come in order, so the place is nearly always the back; a deferred expert's older use walks further in.
    private void MoveToItsPlace(int slot, long lastUse)
    {
        Grow(slot);
        if (_entries[slot].Previous != Unlinked)
            Unlink(slot);
        _entries[slot].LastUse = lastUse;
        var after = _tail;
        while (after >= 0 && Follows(after, slot))
            after = _entries[after].Previous;
        var before = after < 0 ? _head : _entries[after].Next;
        _entries[slot].Previous = after;
        _entries[slot].Next = before;
        if (after < 0)
            _head = slot;
        else
            _entries[after].Next = slot;
        if (before < 0)
            _tail = slot;
        else
            _entries[before].Previous = slot;
    }

    private bool Follows(int a, int b)
    {
        var (useA, useB) = (_entries[a].LastUse, _entries[b].LastUse);
        return useA > useB || (useA == useB && a > b);
    }

    private void Unlink(int slot)
    {
        var (p, n) = (_entries[slot].Previous, _entries[slot].Next);
        if (p < 0)
            _head = n;
        else
            _entries[p].Next = n;
        if (n < 0)
            _tail = p;
        else
            _entries[n].Previous = p;
        _entries[slot].Previous = Unlinked;
    }

    private void Grow(int slot)
    {
        if (slot < _entries.Length)
            return;
        var old = _entries.Length;
        Array.Resize(ref _entries, Math.Max(slot + 1, old * 2));
        for (var s = old; s < _entries.Length; s++)
            _entries[s].Previous = Unlinked;
    }

    private struct Entry
    {
        public long LastUse;
        public int Previous;
        public int Next;
    }
}
