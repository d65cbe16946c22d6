namespace Fabric.Engine.Paging;

/// <summary>The pager's counters. Every use of an expert is exactly one hit or one miss.</summary>
public sealed class PagerStats
{
    public PagerStats(int layers)
    {
        LayerHits = new long[layers];
        LayerMisses = new long[layers];
    }

    /// <summary>Uses that found the expert resident (ready, or already being fetched).</summary>
    public long Hits { get; internal set; }

    /// <summary>Hits whose fetch (a prefetch, usually) was still in flight at the time of use: the caller waits.</summary>
    public long PendingHits { get; internal set; }

    /// <summary>Uses that found the expert absent and needed a fetch.</summary>
    public long Misses { get; internal set; }

    /// <summary>Experts removed from a slot to make room.</summary>
    public long Evictions { get; internal set; }

    /// <summary>Fetches issued by the prefetcher.</summary>
    public long PrefetchesIssued { get; internal set; }

    /// <summary>Prefetched experts that were used before they were evicted.</summary>
    public long PrefetchesUsed { get; internal set; }

    /// <summary>Fetches abandoned by the driver (the fetch failed for good).</summary>
    public long FetchesAbandoned { get; internal set; }

    /// <summary>Hits per layer.</summary>
    public long[] LayerHits { get; }

    /// <summary>Misses per layer.</summary>
    public long[] LayerMisses { get; }

    public long Uses => Hits + Misses;

    /// <summary>Hits / uses (0 when nothing was used).</summary>
    public double HitRate => Uses == 0 ? 0 : (double)Hits / Uses;

    /// <summary>Prefetches used / prefetches issued (0 when none were issued).</summary>
    public double PrefetchPrecision => PrefetchesIssued == 0 ? 0 : (double)PrefetchesUsed / PrefetchesIssued;

    public double LayerHitRate(int layer)
    {
        var uses = LayerHits[layer] + LayerMisses[layer];
        return uses == 0 ? 0 : (double)LayerHits[layer] / uses;
    }
}
