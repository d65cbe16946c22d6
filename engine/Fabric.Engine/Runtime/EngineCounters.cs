namespace Fabric.Engine.Runtime;

/// <summary>The engine's own counters beside the pager's. Times in nanoseconds, sizes in bytes.</summary>
public sealed class EngineCounters
{
    private long _bytesFetched;
    private long _fetches;

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

    internal void ResetFetches()
    {
        Interlocked.Exchange(ref _bytesFetched, 0);
        Interlocked.Exchange(ref _fetches, 0);
    }

    internal void AddFetch(long bytes)
    {
        Interlocked.Add(ref _bytesFetched, bytes);
        Interlocked.Increment(ref _fetches);
    }
}
