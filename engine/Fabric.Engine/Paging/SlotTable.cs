namespace Fabric.Engine.Paging;

/// <summary>What a slot holds.</summary>
public enum SlotState : byte
{
    /// <summary>Nothing; free to fill.</summary>
    Empty = 0,
    /// <summary>A fetch into the slot is in flight; the bytes must not be used and the slot must not be evicted.</summary>
    Loading = 1,
    /// <summary>The expert's bytes are in the slot and verified.</summary>
    Ready = 2,
}

/// <summary>
/// The residency map: which expert each of the device's expert slots holds, in what state, and whether the layer
/// being computed has it pinned. Plain arrays sized once; no allocation after construction. Everything about one slot
/// sits in one 8-byte entry, so a decision about a slot touches one cache line (a simulation keeps a thousand of
/// these tables and visits each in turn, so few of them are in cache at once).
/// </summary>
public sealed class SlotTable
{
    // Which slot holds each expert, as slot + 1 (0: none): in two bytes when there are fewer than 65,536 slots (any
    // real model), so that a layer's entries take half the cache lines; else in four.
    private readonly ushort[]? _slotOfExpertSmall;
    private readonly int[]? _slotOfExpertLarge;
    private readonly Slot[] _slots;

    public SlotTable(int layers, int expertsPerLayer, int slots)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(expertsPerLayer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slots);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(layers, ushort.MaxValue + 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(expertsPerLayer, ushort.MaxValue + 1);
        Layers = layers;
        ExpertsPerLayer = expertsPerLayer;
        Count = slots;
        if (slots <= ushort.MaxValue)
            _slotOfExpertSmall = new ushort[layers * expertsPerLayer];
        else
            _slotOfExpertLarge = new int[layers * expertsPerLayer];
        _slots = new Slot[slots];
    }

    public int Layers { get; }

    public int ExpertsPerLayer { get; }

    /// <summary>The number of expert slots.</summary>
    public int Count { get; }

    /// <summary>Slots that are not empty (loading or ready).</summary>
    public int Occupied { get; private set; }

    /// <summary>Slots with a fetch in flight.</summary>
    public int Loading { get; private set; }

    /// <summary>Slots pinned by the layer being computed.</summary>
    public int Pinned { get; private set; }

    /// <summary>The slot holding <paramref name="key"/> (loading or ready), or -1.</summary>
    public int SlotOf(ExpertKey key)
    {
        var i = Index(key);
        return (_slotOfExpertSmall is { } small ? small[i] : _slotOfExpertLarge![i]) - 1;
    }

    private void SetSlotOf(ExpertKey key, int slot)
    {
        var i = Index(key);
        if (_slotOfExpertSmall is { } small)
            small[i] = (ushort)(slot + 1);
        else
            _slotOfExpertLarge![i] = slot + 1;
    }

    /// <summary>The expert held by <paramref name="slot"/>; meaningless when the slot is empty.</summary>
    public ExpertKey KeyOf(int slot) => new(_slots[slot].Layer, _slots[slot].Expert);

    public SlotState StateOf(int slot) => _slots[slot].State;

    public bool IsPinned(int slot) => _slots[slot].Pinned;

    /// <summary>True when the slot holds a prefetched expert that has not been used yet.</summary>
    public bool IsPrefetchedUnused(int slot) => _slots[slot].PrefetchedUnused;

    /// <summary>A victim may be taken only from a ready slot that is neither pinned nor protected by the current prefetch.</summary>
    public bool IsEvictable(int slot)
    {
        ref readonly var s = ref _slots[slot];
        return s.State == SlotState.Ready && !s.Pinned && !s.Protected;
    }

    /// <summary>The lowest-numbered empty slot, or -1.</summary>
    public int FindEmpty()
    {
        if (Occupied == Count)
            return -1;
        for (var slot = 0; slot < _slots.Length; slot++)
        {
            if (_slots[slot].State == SlotState.Empty)
                return slot;
        }
        return -1;
    }

    internal int Index(ExpertKey key)
    {
        if ((uint)key.Layer >= (uint)Layers || (uint)key.Expert >= (uint)ExpertsPerLayer)
            ThrowOutside(key);
        return (key.Layer * ExpertsPerLayer) + key.Expert;
    }

    // Kept out of Index so that Index, on every lookup, is small enough to inline.
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowOutside(ExpertKey key) =>
        throw new ArgumentOutOfRangeException(nameof(key), $"Expert {key} is outside the model ({Layers} layers of {ExpertsPerLayer} experts).");

    internal void BeginLoad(int slot, ExpertKey key, bool prefetched)
    {
        ref var s = ref _slots[slot];
        if (s.State != SlotState.Empty)
            throw new InvalidOperationException($"Slot {slot} is not empty.");
        SetSlotOf(key, slot);
        s.Layer = (ushort)key.Layer;
        s.Expert = (ushort)key.Expert;
        s.State = SlotState.Loading;
        s.PrefetchedUnused = prefetched;
        Occupied++;
        Loading++;
    }

    internal void MarkReady(int slot)
    {
        ref var s = ref _slots[slot];
        if (s.State != SlotState.Loading)
            throw new InvalidOperationException($"Slot {slot} ({KeyOf(slot)}) has no fetch in flight.");
        s.State = SlotState.Ready;
        Loading--;
    }

    internal void Clear(int slot)
    {
        ref var s = ref _slots[slot];
        if (s.State == SlotState.Empty)
            return;
        if (s.Pinned)
            throw new InvalidOperationException($"Slot {slot} ({KeyOf(slot)}) is pinned and cannot be cleared.");
        if (s.State == SlotState.Loading)
            Loading--;
        SetSlotOf(KeyOf(slot), -1);
        s.State = SlotState.Empty;
        s.PrefetchedUnused = false;
        Occupied--;
    }

    internal void Pin(int slot)
    {
        ref var s = ref _slots[slot];
        if (!s.Pinned)
        {
            s.Pinned = true;
            Pinned++;
        }
    }

    internal void Unpin(int slot)
    {
        ref var s = ref _slots[slot];
        if (s.Pinned)
        {
            s.Pinned = false;
            Pinned--;
        }
    }

    internal void SetProtected(int slot, bool value) => _slots[slot].Protected = value;

    /// <summary>Marks a prefetched slot as used; true when this is its first use.</summary>
    internal bool MarkUsed(int slot)
    {
        ref var s = ref _slots[slot];
        var first = s.PrefetchedUnused;
        s.PrefetchedUnused = false;
        return first;
    }

    private struct Slot
    {
        public ushort Layer;
        public ushort Expert;
        public SlotState State;
        public bool Pinned;
        public bool Protected;
        public bool PrefetchedUnused;
    }
}
