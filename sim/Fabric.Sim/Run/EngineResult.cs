namespace Fabric.Sim.Run;

/// <summary>What one engine did in a run. Times in virtual nanoseconds.</summary>
public sealed class EngineResult
{
    private readonly List<long> _stepNs;

    public EngineResult(string device, int steps)
    {
        Device = device;
        _stepNs = new List<long>(steps);
    }

    public string Device { get; }

    /// <summary>Decode steps' latencies (one token per sequence each), ns.</summary>
    public IReadOnlyList<long> StepNs => _stepNs;
    public long Tokens { get; private set; }
    public long DecodeNs { get; private set; }
    public long PrefillNs { get; set; }
    public long StallNs { get; set; }

    /// <summary>The part of <see cref="StallNs"/> in the prefill step (when the workload's first step is one), ns.</summary>
    public long PrefillStallNs { get; set; }
    public long ComputeNs { get; set; }
    public long BytesFetched { get; set; }
    public long DemandFetches { get; set; }
    public long Prefetches { get; set; }
    public long Visits { get; set; }
    public long FinishedAtNs { get; set; }
    public long Hits { get; set; }
    public long Misses { get; set; }
    public double PrefetchPrecision { get; set; }

    public double HitRate => Hits + Misses == 0 ? 0 : (double)Hits / (Hits + Misses);

    /// <summary>Decode tokens per second of virtual time.</summary>
    public double TokensPerSecond => DecodeNs == 0 ? 0 : Tokens / (DecodeNs / 1e9);

    public void RecordStep(long ns, int tokens)
    {
        _stepNs.Add(ns);
        DecodeNs += ns;
        Tokens += tokens;
    }
}
