namespace Fabric.Engine.Paging;

/// <summary>
/// The pager: decides which experts are resident in the device's expert slots, which to fetch, which to evict and
/// which to prefetch. Plain logic with no clock and no I/O — the runtime engine and the simulator drive this same
/// code. Deterministic, and allocation-free after construction (plans are written into caller-owned spans).
/// <para>Protocol for one layer:</para>
/// <list type="number">
/// <item><see cref="BeginLayer"/>(layer, routed experts, plan): every distinct expert counts one use (hit or miss) and
/// is pinned; the plan says, per expert, Hit (compute now), Pending (a fetch is in flight: wait), Fetch (fetch into
/// the slot; the evicted expert, if any, is already gone) or Deferred (no slot free now).</item>
/// <item><see cref="FetchCompleted"/>(key) once the bytes are in the slot and verified; <see cref="FetchAbandoned"/>
/// if the fetch failed for good.</item>
/// <item>Optionally <see cref="Release"/>(key) after computing an expert, then <see cref="AssignDeferred"/> for the
/// deferred ones (only when a layer routes to more experts than there are slots, e.g. a long prefill).</item>
/// <item><see cref="Prefetch"/> or <see cref="PrefetchNext"/> while the layer computes; <see cref="EndLayer"/> unpins.</item>
/// </list>
/// </summary>
public sealed class ExpertPager
{
    private readonly IEvictionPolicy _policy;
    private readonly bool[] _seen;
    private readonly int[] _layerExperts;
    private readonly int[] _deferred;
    private readonly long[] _deferredAccess;
    private readonly int[] _pinnedSlots;
    private readonly int[] _candidates;
    private int _layerExpertCount;
    private int _deferredCount;
    private int _pinnedCount;
    private int _currentLayer = -1;

    /// <remarks>reserveSlots: Slots the prefetcher leaves for demand fetches (usually top-k): prefetch never
    /// makes more than slots − reserve slots loading or pinned.</remarks>
    public ExpertPager(int layers, int expertsPerLayer, int slots, IEvictionPolicy policy, IPrefetcher? prefetcher = null, int reserveSlots = 2)
    {
        Slots = new SlotTable(layers, expertsPerLayer, slots);
        _policy = policy;
        _policy.Reserve(slots);
        Prefetcher = prefetcher ?? new NoPrefetcher();
        Stats = new PagerStats(layers);
        ReserveSlots = Math.Clamp(reserveSlots, 0, slots);
        _seen = new bool[expertsPerLayer];
        _layerExperts = new int[expertsPerLayer];
        _deferred = new int[expertsPerLayer];
        _deferredAccess = new long[expertsPerLayer];
        _pinnedSlots = new int[expertsPerLayer];
        _candidates = new int[expertsPerLayer];
    }

    /// <summary>
    /// The pager that <paramref name="settings"/> describe, its policy and prefetcher made by name: how the runtime
    /// engine, the simulator and the benchmarks set one up.
    /// </summary>
    public static ExpertPager Create(PagerSettings settings) =>
        new(settings.Layers, settings.ExpertsPerLayer, settings.Slots,
            EvictionPolicies.Create(settings.Policy, settings.Layers, settings.ExpertsPerLayer, settings.TopK, settings.FutureAccesses),
            Prefetchers.Create(settings.Prefetch, settings.Layers, settings.ExpertsPerLayer, settings.TopK),
            reserveSlots: settings.ReserveSlots ?? settings.TopK);

    public SlotTable Slots { get; }

    public PagerStats Stats { get; }

    public IEvictionPolicy Policy => _policy;

    public IPrefetcher Prefetcher { get; }

    public int ReserveSlots { get; }

    public int Layers => Slots.Layers;

    public int ExpertsPerLayer => Slots.ExpertsPerLayer;

    /// <summary>Uses recorded so far: the position of the next use in the access sequence (what Belady indexes).</summary>
    public long AccessIndex { get; private set; }

    /// <summary>The layer begun last, or -1.</summary>
    public int CurrentLayer => _currentLayer;

    /// <summary>The distinct experts of the current layer, ascending (valid until the next BeginLayer).</summary>
    public ReadOnlySpan<int> CurrentExperts => _layerExperts.AsSpan(0, _layerExpertCount);

    /// <summary>The slots the current layer holds pinned (valid until the next BeginLayer or EndLayer).</summary>
    internal ReadOnlySpan<int> PinnedSlots => _pinnedSlots.AsSpan(0, _pinnedCount);

    /// <summary>
    /// Starts computing <paramref name="layer"/>, which routes to <paramref name="requestedExperts"/> (any order,
    /// duplicates allowed). Writes one assignment per distinct expert (ascending) into <paramref name="plan"/> and
    /// returns how many. Unpins the previous layer if <see cref="EndLayer"/> was not called.
    /// </summary>
    public int BeginLayer(int layer, ReadOnlySpan<int> requestedExperts, Span<ExpertAssignment> plan)
    {
        if ((uint)layer >= (uint)Layers)
            throw new ArgumentOutOfRangeException(nameof(layer), $"Layer {layer} is outside the model's {Layers} layers.");
        EndLayer();
        _currentLayer = layer;
        _layerExpertCount = DistinctAscending(layer, requestedExperts);
        if (plan.Length < _layerExpertCount)
            throw new ArgumentException($"The plan holds {plan.Length} entries; layer {layer} needs {_layerExpertCount}.", nameof(plan));
        _policy.OnLayerVisit(layer);
        Prefetcher.Observe(layer, CurrentExperts);

        // Pin every resident expert of the layer first, so that no miss of this layer evicts a hit of it.
        for (var i = 0; i < _layerExpertCount; i++)
        {
            var slot = Slots.SlotOf(new ExpertKey(layer, _layerExperts[i]));
            if (slot >= 0)
                PinSlot(slot);
        }

        _deferredCount = 0;
        for (var i = 0; i < _layerExpertCount; i++)
        {
            var key = new ExpertKey(layer, _layerExperts[i]);
            var access = AccessIndex++;
            var slot = Slots.SlotOf(key);
            if (slot >= 0)
            {
                Stats.Hits++;
                Stats.LayerHits[layer]++;
                if (Slots.MarkUsed(slot))
                    Stats.PrefetchesUsed++;
                var pending = Slots.StateOf(slot) == SlotState.Loading;
                if (pending)
                    Stats.PendingHits++;
                _policy.OnUse(slot, key, access);
                plan[i] = new ExpertAssignment(key, slot, pending ? AssignmentKind.Pending : AssignmentKind.Hit, false, default);
                continue;
            }
            Stats.Misses++;
            Stats.LayerMisses[layer]++;
            plan[i] = TryAssign(key, access, prefetched: false, out var assignment)
                ? assignment
                : Defer(key, access);
            if (assignment.Kind == AssignmentKind.Fetch)
                _policy.OnUse(assignment.Slot, key, access);
        }
        return _layerExpertCount;
    }

    // The distinct requested experts, ascending, into _layerExperts: a decode step routes a handful of a layer's
    // experts, which an insertion sort orders faster than a pass over all of them; a long prefill routes many.
    private int DistinctAscending(int layer, ReadOnlySpan<int> requestedExperts)
    {
        var experts = _seen.Length;
        foreach (var e in requestedExperts)
        {
            if ((uint)e >= (uint)experts)
                throw new ArgumentOutOfRangeException(nameof(requestedExperts), $"Expert {e} is outside layer {layer}'s {experts} experts.");
        }
        var count = 0;
        if (requestedExperts.Length * 8 <= experts)
        {
            foreach (var e in requestedExperts)
            {
                var i = count;
                while (i > 0 && _layerExperts[i - 1] > e)
                    i--;
                if (i > 0 && _layerExperts[i - 1] == e)
                    continue;
                for (var j = count; j > i; j--)
                    _layerExperts[j] = _layerExperts[j - 1];
                _layerExperts[i] = e;
                count++;
            }
            return count;
        }
        foreach (var e in requestedExperts)
            _seen[e] = true;
        for (var e = 0; e < experts; e++)
        {
            if (_seen[e])
            {
                _layerExperts[count++] = e;
                _seen[e] = false;
            }
        }
        return count;
    }

    /// <summary>
    /// Assigns slots to the current layer's deferred experts now that <see cref="Release"/> or completed fetches may
    /// have freed some; writes Fetch or (still) Deferred assignments and returns how many were written.
    /// </summary>
    public int AssignDeferred(Span<ExpertAssignment> plan)
    {
        var n = _deferredCount;
        _deferredCount = 0;
        for (var i = 0; i < n; i++)
        {
            var key = new ExpertKey(_currentLayer, _deferred[i]);
            var access = _deferredAccess[i];
            plan[i] = TryAssign(key, access, prefetched: false, out var assignment) ? assignment : Defer(key, access);
            if (assignment.Kind == AssignmentKind.Fetch)
                _policy.OnUse(assignment.Slot, key, access);
        }
        return n;
    }

    /// <summary>The number of deferred experts of the current layer.</summary>
    public int DeferredCount => _deferredCount;

    /// <summary>
    /// Warm start: puts <paramref name="key"/> into a free slot without counting a use (e.g. loading every expert of an
    /// all-resident run). Returns a Fetch assignment, or one with slot -1 when no slot is free. Never evicts.
    /// </summary>
    public ExpertAssignment Preload(ExpertKey key)
    {
        var existing = Slots.SlotOf(key);
        if (existing >= 0)
            return new ExpertAssignment(key, existing, Slots.StateOf(existing) == SlotState.Ready ? AssignmentKind.Hit : AssignmentKind.Pending, false, default);
        var slot = Slots.FindEmpty();
        if (slot < 0)
            return new ExpertAssignment(key, -1, AssignmentKind.Deferred, false, default);
        Slots.BeginLoad(slot, key, prefetched: false);
        _policy.OnFill(slot, key, AccessIndex, prefetched: false);
        return new ExpertAssignment(key, slot, AssignmentKind.Fetch, false, default);
    }

    /// <summary>The fetch of <paramref name="key"/> finished and its bytes were verified: its slot becomes ready.</summary>
    public void FetchCompleted(ExpertKey key)
    {
        var slot = Slots.SlotOf(key);
        if (slot < 0)
            throw new InvalidOperationException($"Expert {key} has no slot; no fetch of it was issued.");
        Slots.MarkReady(slot);
    }

    /// <summary>The fetch of <paramref name="key"/> failed for good: its slot is freed (and unpinned).</summary>
    public void FetchAbandoned(ExpertKey key)
    {
        var slot = Slots.SlotOf(key);
        if (slot < 0 || Slots.StateOf(slot) != SlotState.Loading)
            return;
        Slots.Unpin(slot);
        Slots.Clear(slot);
        _policy.OnEvict(slot, key);
        Stats.FetchesAbandoned++;
    }

    /// <summary>Unpins one expert of the current layer once the driver has finished computing with it.</summary>
    public void Release(ExpertKey key)
    {
        var slot = Slots.SlotOf(key);
        if (slot >= 0)
            Slots.Unpin(slot);
    }

    /// <summary>Ends the current layer: unpins its experts.</summary>
    public void EndLayer()
    {
        for (var i = 0; i < _pinnedCount; i++)
            Slots.Unpin(_pinnedSlots[i]);
        _pinnedCount = 0;
    }

    /// <summary>
    /// Issues fetches for those of <paramref name="candidates"/> (experts of <paramref name="targetLayer"/>, best first)
    /// that are absent, into free slots or by evicting the policy's victims; never evicts a pinned or loading expert or
    /// another candidate, and leaves <see cref="ReserveSlots"/> slots for demand fetches. Returns the number of
    /// fetches written into <paramref name="fetches"/>.
    /// </summary>
    public int Prefetch(int targetLayer, ReadOnlySpan<int> candidates, Span<ExpertAssignment> fetches)
    {
        var count = 0;
        foreach (var e in candidates)
        {
            var s = Slots.SlotOf(new ExpertKey(targetLayer, e));
            if (s >= 0)
                Slots.SetProtected(s, true);
        }
        foreach (var e in candidates)
        {
            if (count >= fetches.Length)
                break;
            var key = new ExpertKey(targetLayer, e);
            if (Slots.SlotOf(key) >= 0)
                continue;
            if (Slots.Loading + Slots.Pinned + ReserveSlots >= Slots.Count)
                break;
            if (!TryAssign(key, AccessIndex, prefetched: true, out var assignment))
                break;
            Slots.SetProtected(assignment.Slot, true);
            Stats.PrefetchesIssued++;
            fetches[count++] = assignment;
        }
        foreach (var e in candidates)
        {
            var s = Slots.SlotOf(new ExpertKey(targetLayer, e));
            if (s >= 0)
                Slots.SetProtected(s, false);
        }
        return count;
    }

    /// <summary>
    /// Asks the prefetcher for the experts of the layer after the current one (the last layer wraps to layer 0) and
    /// prefetches them. <paramref name="routerPrediction"/> is the next layer's router top choices from the current
    /// hidden state when <see cref="IPrefetcher.WantsRouterPrediction"/>, else empty.
    /// </summary>
    public int PrefetchNext(ReadOnlySpan<int> routerPrediction, Span<ExpertAssignment> fetches)
    {
        if (_currentLayer < 0)
            return 0;
        var next = (_currentLayer + 1) % Layers;
        var n = Prefetcher.Predict(next, CurrentExperts, routerPrediction, _candidates);
        return n == 0 ? 0 : Prefetch(next, _candidates.AsSpan(0, n), fetches);
    }

    private bool TryAssign(ExpertKey key, long access, bool prefetched, out ExpertAssignment assignment)
    {
        var slot = Slots.FindEmpty();
        var evicted = false;
        ExpertKey victim = default;
        if (slot < 0)
        {
            slot = _policy.ChooseVictim(Slots, new EvictionContext(_currentLayer < 0 ? 0 : _currentLayer, AccessIndex));
            if (slot < 0)
            {
                assignment = default;
                return false;
            }
            if (!Slots.IsEvictable(slot))
                throw new InvalidOperationException($"Policy {_policy.Name} chose slot {slot}, which may not be evicted.");
            victim = Slots.KeyOf(slot);
            Slots.Clear(slot);
            _policy.OnEvict(slot, victim);
            Stats.Evictions++;
            evicted = true;
        }
        Slots.BeginLoad(slot, key, prefetched);
        _policy.OnFill(slot, key, access, prefetched);
        if (!prefetched)
            PinSlot(slot);
        assignment = new ExpertAssignment(key, slot, AssignmentKind.Fetch, evicted, victim);
        return true;
    }

    private ExpertAssignment Defer(ExpertKey key, long access)
    {
        _deferredAccess[_deferredCount] = access;
        _deferred[_deferredCount++] = key.Expert;
        return new ExpertAssignment(key, -1, AssignmentKind.Deferred, false, default);
    }

    private void PinSlot(int slot)
    {
        if (Slots.IsPinned(slot))
            return;
        Slots.Pin(slot);
        _pinnedSlots[_pinnedCount++] = slot;
    }
}
