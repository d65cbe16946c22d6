namespace Fabric.Sim.Run;

/// <summary>One link direction's load over a run.</summary>
public sealed record ChannelLoad(string Name, string Kind, double Bandwidth, double BytesCarried, double Utilisation);

/// <summary>The outcome of a run: per-engine results, link loads, and the cost of simulating it.</summary>
public sealed class SimResult
{
    public required string Topology { get; init; }
    public required string Workload { get; init; }
    public required string Policy { get; init; }
    public required string Prefetch { get; init; }
    public required int Slots { get; init; }

    /// <summary>Which predictor next-layer prefetch ran with: "recorded", "oracle", "accuracy 0.8"; empty without one.</summary>
    public string Predictor { get; init; } = "";

    /// <summary>The sharing model's name (<see cref="Network.SharingNames"/>).</summary>
    public string Sharing { get; init; } = Network.SharingNames.MaxMin;
    public required IReadOnlyList<EngineResult> Engines { get; init; }

    /// <summary>Every channel that carried bytes, busiest first.</summary>
    public required IReadOnlyList<ChannelLoad> Channels { get; init; }
    public required long MakespanNs { get; init; }
    public required long Events { get; init; }
    public required double WallSeconds { get; init; }

    /// <summary>The threads that ran the engines (fifo runs use several; the results do not depend on how many).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Fair-share recomputations and the flows they touched (the cost of contention modelling).</summary>
    public long Reallocations { get; init; }
    public long FlowsReallocated { get; init; }

    /// <summary>How many of the recomputations were re-fills, and how many local changes cascaded to other groups.</summary>
    public long Refills { get; init; }
    public long CascadedChanges { get; init; }

    public long Tokens => Engines.Sum(e => e.Tokens);

    /// <summary>Decode tokens per second summed over engines.</summary>
    public double TotalTokensPerSecond => Engines.Sum(e => e.TokensPerSecond);
    public double HitRate => Engines.Sum(e => e.Hits + e.Misses) is var uses and > 0 ? (double)Engines.Sum(e => e.Hits) / uses : 0;
    public long StallNs => Engines.Sum(e => e.StallNs);
    public long BytesFetched => Engines.Sum(e => e.BytesFetched);

    /// <summary>Per-token latency percentile over every decode step of every engine, ns.</summary>
    public double TokenLatencyPercentile(double p)
    {
        var all = Engines.SelectMany(e => e.StepNs).Order().ToArray();
        if (all.Length == 0)
            return 0;
        var rank = (int)Math.Ceiling(p / 100 * all.Length) - 1;
        return all[Math.Clamp(rank, 0, all.Length - 1)];
    }
}
