namespace Fabric.Engine.Runtime;

/// <summary>
/// One completed expert fetch: the trace step and layer it was issued in (step 0 = prefill), when it was issued on the engine's clock,
/// how long it waited to start (thread-pool dispatch, staging buffers) and how long it took from its start to verified
/// bytes in the slot. Nanoseconds.
/// </summary>
public readonly record struct FetchTiming(int Step, int Layer, long IssuedNs, long QueuedNs, long FetchNs);

/// <summary>The engine's own counters beside the pager's. Times in nanoseconds, sizes in bytes.</summary>
public sealed class EngineCounters
{
    private long _bytesFetched;
    private long _fetches;
    private long _fetchNs;
    private long _fetchQueuedNs;
    private readonly List<FetchTiming> _fetchLog = [];

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

    /// <summary>Every fetch after start-up in the order they finished (a copy).</summary>
    public FetchTiming[] FetchLog
    {
        get
        {
            lock (_fetchLog)
                return [.. _fetchLog];
        }
    }

    internal void AddFetchTiming(int step, int layer, long issuedNs, long queuedNs, long fetchNs)
    {
        Interlocked.Add(ref _fetchQueuedNs, queuedNs);
        Interlocked.Add(ref _fetchNs, fetchNs);
        lock (_fetchLog)
            _fetchLog.Add(new FetchTiming(step, layer, issuedNs, queuedNs, fetchNs));
    }

    internal void ResetFetches()
    {
        Interlocked.Exchange(ref _fetchNs, 0);
        Interlocked.Exchange(ref _fetchQueuedNs, 0);
        Interlocked.Exchange(ref _bytesFetched, 0);
        Interlocked.Exchange(ref _fetches, 0);
        lock (_fetchLog)
            _fetchLog.Clear();
    }

    internal void AddFetch(long bytes)
    {
        Interlocked.Add(ref _bytesFetched, bytes);
        Interlocked.Increment(ref _fetches);
    }
}
