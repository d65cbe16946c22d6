namespace Fabric.Engine.Runtime;

/// <summary>The engine's own counters beside the pager's. Times in nanoseconds, sizes in bytes.</summary>
public sealed class EngineCounters
{
    private long _bytesFetched;
    private long _fetches;
    private long _fetchNs;
    private long _fetchQueuedNs;

    /// <summary>Bytes moved from the source for expert fetches after start-up (failed attempts included).</summary>
    public long BytesFetched => Interlocked.Read(ref _bytesFetched);

    /// <summary>Expert fetches completed after start-up (demand and prefetch).</summary>
    public long Fetches => Interlocked.Read(ref _fetches);

    /// <summary>Bytes loaded into slots before the first token (the all-resident warm start).</summary>
    public long PreloadBytes { get; internal set; }

    /// <summary>Time the compute thread waited for expert fetches.</summary>
    public long StallNs { get; internal set; }

    /// <summary>Time spent in layers excluding <see cref="StallNs"/>.</summary>
    public long ComputeNs { get; internal set; }

    /// <summary>Stall per layer.</summary>
    public long[] LayerStallNs { get; internal set; } = [];

    /// <summary>Sum over completed fetches of the time from its start on a pool thread to verified bytes in the slot.</summary>
    public long FetchNs => Interlocked.Read(ref _fetchNs);

    /// <summary>Sum over fetches of the time from being issued to starting (thread-pool dispatch and waiting for a staging buffer).</summary>
    public long FetchQueuedNs => Interlocked.Read(ref _fetchQueuedNs);

    internal void AddFetchTiming(long queuedNs, long fetchNs)
    {
        Interlocked.Add(ref _fetchQueuedNs, queuedNs);
        Interlocked.Add(ref _fetchNs, fetchNs);
    }

    internal void ResetFetches()
    {
        Interlocked.Exchange(ref _fetchNs, 0);
        Interlocked.Exchange(ref _fetchQueuedNs, 0);
        Interlocked.Exchange(ref _bytesFetched, 0);
        Interlocked.Exchange(ref _fetches, 0);
    }

    internal void AddFetch(long bytes)
    {
        Interlocked.Add(ref _bytesFetched, bytes);
        Interlocked.Increment(ref _fetches);
    }
}
