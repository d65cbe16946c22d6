using CsCheck;
using Fabric.Engine.Paging;

namespace Fabric.Engine.Tests.Paging;

public sealed class PagerPropertyTests
{
    private static readonly Gen<RandomTrace> Traces =
        Gen.Select(Gen.Int[1, 4], Gen.Int[2, 8], Gen.Int[1, 3], Gen.Int[0, 1000], Gen.Int[1, 12], Gen.Int[0, 1_000_000], Gen.Double[0, 1.5])
            .Select((layers, experts, topK, slots, steps, seed, skew) => RandomTrace.Create(layers, experts, topK, slots, steps, seed, skew));

    private static IEvictionPolicy Policy(string name, RandomTrace t) =>
        EvictionPolicies.Create(name, t.Layers, t.Experts, t.TopK, name == "belady" ? t.AccessSequence() : null);

    [Fact]
    public void EveryPolicyAndPrefetcher_KeepsPinsOccupancyAndCounts()
    {
        Traces.Sample(trace =>
        {
            foreach (var policy in EvictionPolicies.Names)
            {
                foreach (var prefetch in Prefetchers.Names)
                {
                    PagerDriver.Run(trace, Policy(policy, trace), Prefetchers.Create(prefetch, trace.Layers, trace.Experts, trace.TopK));
                    PagerDriver.Run(trace, Policy(policy, trace), Prefetchers.Create(prefetch, trace.Layers, trace.Experts, trace.TopK), delayPrefetches: true);
                }
            }
        }, iter: 150);
    }

    [Fact]
    public void BeginLayer_PlansEachRequestedExpertOnce_InAscendingOrder()
    {
        // Few requests (a decode step) and many (a prefill) take different paths to the same answer.
        Gen.Int[1, 200].Select(Gen.Int[0, 63].Array[1, 40]).Sample((experts, requested) =>
        {
            requested = [.. requested.Select(e => e % experts)];
            var pager = new ExpertPager(2, experts, 256, new LruPolicy());
            var plan = new ExpertAssignment[experts];
            var n = pager.BeginLayer(1, requested, plan);
            var expected = requested.Distinct().Order().ToArray();
            Assert.Equal(expected, pager.CurrentExperts.ToArray());
            Assert.Equal(expected, plan[..n].Select(a => a.Key.Expert));
        }, iter: 500);
    }

    [Fact]
    public void Belady_HitsAtLeastAsOftenAsEveryOnlinePolicy()
    {
        Traces.Sample(trace =>
        {
            var belady = PagerDriver.Run(trace, Policy("belady", trace), new NoPrefetcher()).Hits;
            foreach (var name in new[] { "lru", "lfu", "activation" })
            {
                var hits = PagerDriver.Run(trace, Policy(name, trace), new NoPrefetcher()).Hits;
                Assert.True(belady >= hits, $"Belady hit {belady} times, {name} {hits} times");
            }
        }, iter: 300);
    }

    [Fact]
    public void Lru_ChoosesTheVictimsThatAScanOfEverySlotChooses()
    {
        Traces.Sample(trace =>
        {
            foreach (var prefetch in Prefetchers.Names)
            {
                foreach (var delay in new[] { false, true })
                {
                    var listed = new RecordingPolicy(new LruPolicy());
                    var scanned = new RecordingPolicy(new ScanningLru());
                    PagerDriver.Run(trace, listed, Prefetchers.Create(prefetch, trace.Layers, trace.Experts, trace.TopK), delay);
                    PagerDriver.Run(trace, scanned, Prefetchers.Create(prefetch, trace.Layers, trace.Experts, trace.TopK), delay);
                    Assert.Equal(scanned.Victims, listed.Victims);
                }
            }
        }, iter: 300);
    }

    [Fact]
    public void Warm_ChangesNoDecision()
    {
        // Warming reads what a coming layer will touch (for the cache's sake) and must change nothing: the same
        // victims and the same counts with it as without, for every policy and prefetcher.
        Traces.Sample(trace =>
        {
            foreach (var policy in EvictionPolicies.Names)
            {
                foreach (var prefetch in Prefetchers.Names)
                {
                    var plain = new RecordingPolicy(Policy(policy, trace));
                    var warmed = new RecordingPolicy(Policy(policy, trace));
                    var a = PagerDriver.Run(trace, plain, Prefetchers.Create(prefetch, trace.Layers, trace.Experts, trace.TopK), delayPrefetches: true);
                    var b = PagerDriver.Run(trace, warmed, Prefetchers.Create(prefetch, trace.Layers, trace.Experts, trace.TopK), delayPrefetches: true, warm: true);
                    Assert.Equal(plain.Victims, warmed.Victims);
                    Assert.Equal(
                        (a.Hits, a.Misses, a.PendingHits, a.Evictions, a.PrefetchesIssued, a.PrefetchesUsed),
                        (b.Hits, b.Misses, b.PendingHits, b.Evictions, b.PrefetchesIssued, b.PrefetchesUsed));
                }
            }
        }, iter: 100);
        // Out of range, warming reads nothing.
        var slots = new SlotTable(2, 4, 3);
        Assert.Equal(0, new LruPolicy().Warm(slots, [-1, 7]));
        var lru = new LruPolicy();
        Assert.Equal(0, new PagerWarmer(new ExpertPager(2, 4, 3, lru), lru).Warm(2, [0]));
    }

    [Fact]
    public void Lru_OnACycleLargerThanTheCache_MissesEveryTime_WhileBeladyKeepsSome()
    {
        // One expert per layer, 4 layers, 3 slots: the classic cyclic case.
        var visits = Enumerable.Range(0, 40).Select(i => (i % 4, new[] { 0 })).ToList();
        var trace = new RandomTrace(4, 1, 1, 3, visits);
        var lru = PagerDriver.Run(trace, new LruPolicy(), new NoPrefetcher());
        var belady = PagerDriver.Run(trace, Policy("belady", trace), new NoPrefetcher());
        var activation = PagerDriver.Run(trace, Policy("activation", trace), new NoPrefetcher());
        Assert.Equal(0, lru.Hits);
        Assert.True(belady.Hits >= 24, $"Belady hits {belady.Hits}");
        Assert.True(activation.Hits >= 20, $"activation hits {activation.Hits}");
    }

    [Fact]
    public void Belady_RejectsARunThatDivergesFromItsTrace()
    {
        var belady = new BeladyPolicy(1, 4, [new ExpertKey(0, 1)]);
        var pager = new ExpertPager(1, 4, 2, belady);
        var plan = new ExpertAssignment[4];
        Assert.Throws<InvalidOperationException>(() => pager.BeginLayer(0, [2], plan));
    }

    [Fact]
    public void Prefetch_ThatIsUsed_CountsTowardPrecision()
    {
        var pager = new ExpertPager(2, 4, 4, new LruPolicy(), new NextLayerPrefetcher(), reserveSlots: 1);
        var plan = new ExpertAssignment[4];
        var fetches = new ExpertAssignment[4];
        pager.BeginLayer(0, [0, 1], plan);
        pager.FetchCompleted(plan[0].Key);
        pager.FetchCompleted(plan[1].Key);
        Assert.Equal(1, pager.PrefetchNext([2, 3], fetches));
        Assert.Equal(new ExpertKey(1, 2), fetches[0].Key);
        pager.EndLayer();
        var n = pager.BeginLayer(1, [2, 3], plan);
        Assert.Equal(2, n);
        Assert.Equal(AssignmentKind.Pending, plan[0].Kind);
        Assert.Equal(AssignmentKind.Fetch, plan[1].Kind);
        Assert.Equal(1, pager.Stats.PrefetchesUsed);
        Assert.Equal(1.0, pager.Stats.PrefetchPrecision);
        Assert.Equal(3, pager.Stats.Misses);
        Assert.Equal(1, pager.Stats.Hits);
    }

    /// <summary>LRU as the scan of every slot that <see cref="ScoredPolicy"/> does: the reference for the list.</summary>
    private sealed class ScanningLru : ScoredPolicy
    {
        public override string Name => "lru-scan";

        protected override double Score(int slot, ExpertKey key, SlotTable slots, in EvictionContext context) => 0;
    }

    /// <summary>Passes every call on and records the victims chosen.</summary>
    private sealed class RecordingPolicy(IEvictionPolicy inner) : IEvictionPolicy, IWarmablePolicy
    {
        public List<int> Victims { get; } = [];

        public string Name => inner.Name;

        public void OnUse(int slot, ExpertKey key, long accessIndex) => inner.OnUse(slot, key, accessIndex);

        public void OnFill(int slot, ExpertKey key, long accessIndex, bool prefetched) => inner.OnFill(slot, key, accessIndex, prefetched);

        public void OnEvict(int slot, ExpertKey key) => inner.OnEvict(slot, key);

        public void Reserve(int slots) => inner.Reserve(slots);

        public void OnLayerVisit(int layer) => inner.OnLayerVisit(layer);

        public int Warm(SlotTable slots, ReadOnlySpan<int> usedSlots) => (inner as IWarmablePolicy)?.Warm(slots, usedSlots) ?? 0;

        public int ChooseVictim(SlotTable slots, in EvictionContext context)
        {
            var victim = inner.ChooseVictim(slots, context);
            Victims.Add(victim);
            return victim;
        }
    }
}
