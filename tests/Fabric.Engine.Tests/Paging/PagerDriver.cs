using Fabric.Engine.Paging;

namespace Fabric.Engine.Tests.Paging;

/// <summary>A random routing trace: per step, per layer, the experts routed (top-k per position, several positions in the prefill).</summary>
internal sealed record RandomTrace(int Layers, int Experts, int TopK, int Slots, List<(int Layer, int[] Experts)> Visits)
{
    public static RandomTrace Create(int layers, int experts, int topK, int slotChoice, int steps, int seed, double skew)
    {
        var random = new Random(seed);
        topK = Math.Min(topK, experts);
        var slots = topK + (slotChoice % ((layers * experts) - topK + 1));
        var weights = Enumerable.Range(0, experts).Select(e => 1 / Math.Pow(e + 1, skew)).ToArray();
        var visits = new List<(int, int[])>();
        for (var step = 0; step < steps; step++)
        {
            var positions = step == 0 ? 1 + random.Next(3) : 1;
            for (var layer = 0; layer < layers; layer++)
            {
                var routed = new List<int>();
                for (var p = 0; p < positions; p++)
                {
                    var chosen = new HashSet<int>();
                    while (chosen.Count < topK)
                        chosen.Add(Pick(random, weights));
                    routed.AddRange(chosen);
                }
                visits.Add((layer, [.. routed]));
            }
        }
        return new RandomTrace(layers, experts, topK, slots, visits);
    }

    private static int Pick(Random random, double[] weights)
    {
        var x = random.NextDouble() * weights.Sum();
        for (var i = 0; i < weights.Length; i++)
        {
            x -= weights[i];
            if (x <= 0)
                return i;
        }
        return weights.Length - 1;
    }

    public List<ExpertKey> AccessSequence() => BeladyPolicy.AccessSequence(Visits.Select(v => (v.Layer, (IEnumerable<int>)v.Experts)));
}

/// <summary>
/// Drives a pager through a trace the way the engine does (fetches complete at once, or a layer later), checking the
/// invariants after every call.
/// </summary>
internal static class PagerDriver
{
    /// <remarks>warm: warm the pager before each layer for it and for the next one, and with experts and layers out of range.</remarks>
    public static PagerStats Run(RandomTrace trace, IEvictionPolicy policy, IPrefetcher prefetcher, bool delayPrefetches = false, bool warm = false)
    {
        var pager = new ExpertPager(trace.Layers, trace.Experts, trace.Slots, policy, prefetcher, reserveSlots: trace.TopK);
        var warmer = new PagerWarmer(pager, policy as IWarmablePolicy);
        var plan = new ExpertAssignment[trace.Experts];
        var fetches = new ExpertAssignment[trace.Experts];
        var inFlight = new List<ExpertKey>();
        long uses = 0;
        for (var v = 0; v < trace.Visits.Count; v++)
        {
            var (layer, routed) = trace.Visits[v];
            var distinct = routed.Distinct().Order().ToArray();
            var next = trace.Visits[(v + 1) % trace.Visits.Count];
            if (warm)
            {
                warmer.Warm(layer, routed);
                warmer.Warm(next.Layer, next.Experts);
                warmer.Warm(-1, routed);
                warmer.Warm(layer, [-1, trace.Experts]);
            }
            var n = pager.BeginLayer(layer, routed, plan);
            uses += n;
            Assert.Equal(distinct.Length, n);
            var resident = new List<ExpertKey>();
            var deferred = 0;
            for (var i = 0; i < n; i++)
            {
                var a = plan[i];
                Assert.Equal(new ExpertKey(layer, distinct[i]), a.Key);
                if (a.HasEviction)
                    Assert.False(a.Evicted.Layer == layer && distinct.Contains(a.Evicted.Expert) && resident.Contains(a.Evicted),
                        $"evicted {a.Evicted}, which the layer being computed had pinned");
                switch (a.Kind)
                {
                    case AssignmentKind.Fetch:
                        pager.FetchCompleted(a.Key);
                        inFlight.Remove(a.Key);
                        break;
                    case AssignmentKind.Pending:
                        pager.FetchCompleted(a.Key);
                        inFlight.Remove(a.Key);
                        break;
                    case AssignmentKind.Deferred:
                        deferred++;
                        continue;
                }
                resident.Add(a.Key);
                Assert.Equal(a.Key, pager.Slots.KeyOf(a.Slot));
                Assert.True(pager.Slots.IsPinned(a.Slot));
            }
            // Every resident expert of the layer is pinned and stays until the layer ends.
            while (deferred > 0)
            {
                foreach (var k in resident)
                    pager.Release(k);
                resident.Clear();
                var m = pager.AssignDeferred(plan);
                deferred = 0;
                for (var i = 0; i < m; i++)
                {
                    if (plan[i].Kind == AssignmentKind.Deferred)
                    {
                        deferred++;
                        continue;
                    }
                    pager.FetchCompleted(plan[i].Key);
                    resident.Add(plan[i].Key);
                }
                Assert.True(m == 0 || deferred < m || inFlight.Count > 0, "deferred experts made no progress");
                if (deferred > 0)
                {
                    foreach (var k in inFlight)
                        pager.FetchCompleted(k);
                    inFlight.Clear();
                }
            }
            CheckOccupancy(pager);

            var prediction = next.Experts.Distinct().Take(trace.TopK).ToArray();
            var f = pager.PrefetchNext(prefetcher.WantsRouterPrediction ? prediction : [], fetches);
            for (var i = 0; i < f; i++)
            {
                Assert.Equal(AssignmentKind.Fetch, fetches[i].Kind);
                if (fetches[i].HasEviction)
                    Assert.DoesNotContain(fetches[i].Evicted, resident);
                if (delayPrefetches)
                    inFlight.Add(fetches[i].Key);
                else
                    pager.FetchCompleted(fetches[i].Key);
            }
            CheckOccupancy(pager);
            pager.EndLayer();
            Assert.Equal(0, pager.Slots.Pinned);
        }
        Assert.Equal(uses, pager.Stats.Hits + pager.Stats.Misses);
        Assert.Equal(uses, pager.AccessIndex);
        Assert.Equal(uses, pager.Stats.LayerHits.Sum() + pager.Stats.LayerMisses.Sum());
        Assert.True(pager.Stats.PrefetchesUsed <= pager.Stats.PrefetchesIssued);
        return pager.Stats;
    }

    private static void CheckOccupancy(ExpertPager pager)
    {
        var slots = pager.Slots;
        Assert.True(slots.Occupied <= slots.Count);
        var occupied = 0;
        for (var s = 0; s < slots.Count; s++)
        {
            if (slots.StateOf(s) == SlotState.Empty)
                continue;
            occupied++;
            Assert.Equal(s, slots.SlotOf(slots.KeyOf(s)));
        }
        Assert.Equal(slots.Occupied, occupied);
    }
}
