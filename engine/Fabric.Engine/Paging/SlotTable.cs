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
/// being computed has it pinned. Plain arrays sized once; no allocation after construction.
/// </summary>
public sealed class SlotTable
{
    private readonly int[] _slotOfExpert;
    private readonly ExpertKey[] _keyOfSlot;
    private readonly SlotState[] _state;
    private readonly bool[] _pinned;
    private readonly bool[] _protected;
    private readonly bool[] _prefetchedUnused;

    public SlotTable(int layers, int expertsPerLayer, int slots)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(expertsPerLayer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slots);
        Layers = layers;
        ExpertsPerLayer = expertsPerLayer;
        Count = slots;
        _slotOfExpert = new int[layers * expertsPerLayer];
        Array.Fill(_slotOfExpert, -1);
        _keyOfSlot = new ExpertKey[slots];
        _state = new SlotState[slots];
        _pinned = new bool[slots];
        _protected = new bool[slots];
        _prefetchedUnused = new bool[slots];
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
    public int SlotOf(ExpertKey key) => _slotOfExpert[Index(key)];

    /// <summary>The expert held by <paramref name="slot"/>; meaningless when the slot is empty.</summary>
    public ExpertKey KeyOf(int slot) => _keyOfSlot[slot];

    public SlotState StateOf(int slot) => _state[slot];

    public bool IsPinned(int slot) => _pinned[slot];

    /// <summary>True when the slot holds a prefetched expert that has not been used yet.</summary>
    public bool IsPrefetchedUnused(int slot) => _prefetchedUnused[slot];

    /// <summary>A victim may be taken only from a ready slot that is neither pinned nor protected by the current prefetch.</summary>
    public bool IsEvictable(int slot) => _state[slot] == SlotState.Ready && !_pinned[slot] && !_protected[slot];

    /// <summary>The lowest-numbered empty slot, or -1.</summary>
    public int FindEmpty()
    {
        if (Occupied == Count)
            return -1;
        return Array.IndexOf(_state, SlotState.Empty);
    }

    internal int Index(ExpertKey key)
    {
        if ((uint)key.Layer >= (uint)Layers || (uint)key.Expert >= (uint)ExpertsPerLayer)
            throw new ArgumentOutOfRangeException(nameof(key), $"Expert {key} is outside the model ({Layers} layers of {ExpertsPerLayer} experts).");
        return (key.Layer * ExpertsPerLayer) + key.Expert;
    }

    internal void BeginLoad(int slot, ExpertKey key, bool prefetched)
    {
        if (_state[slot] != SlotState.Empty)
            throw new InvalidOperationException($"Slot {slot} is not empty.");
        _slotOfExpert[Index(key)] = slot;
        _keyOfSlot[slot] = key;
        _state[slot] = SlotState.Loading;
        _prefetchedUnused[slot] = prefetched;
        Occupied++;
        Loading++;
    }

    internal void MarkReady(int slot)
    {
        if (_state[slot] != SlotState.Loading)
            throw new InvalidOperationException($"Slot {slot} ({_keyOfSlot[slot]}) has no fetch in flight.");
        _state[slot] = SlotState.Ready;
        Loading--;
    }

    internal void Clear(int slot)
    {
        if (_state[slot] == SlotState.Empty)
            return;
        if (_pinned[slot])
            throw new InvalidOperationException($"Slot {slot} ({_keyOfSlot[slot]}) is pinned and cannot be cleared.");
        if (_state[slot] == SlotState.Loading)
            Loading--;
        _slotOfExpert[Index(_keyOfSlot[slot])] = -1;
        _state[slot] = SlotState.Empty;
        _prefetchedUnused[slot] = false;
        Occupied--;
    }

    internal void Pin(int slot)
    {
        if (!_pinned[slot])
        {
            _pinned[slot] = true;
            Pinned++;
        }
    }

    internal void Unpin(int slot)
    {
        if (_pinned[slot])
        {
            _pinned[slot] = false;
            Pinned--;
        }
    }

    internal void SetProtected(int slot, bool value) => _protected[slot] = value;

    /// <summary>Marks a prefetched slot as used; true when this is its first use.</summary>
    internal bool MarkUsed(int slot)
    {
        var first = _prefetchedUnused[slot];
        _prefetchedUnused[slot] = false;
        return first;
    }
}
