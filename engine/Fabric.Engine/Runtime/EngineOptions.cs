using Fabric.Engine.Paging;

namespace Fabric.Engine.Runtime;

/// <summary>How an engine is set up. Sizes are in bytes unless named otherwise.</summary>
public sealed record EngineOptions
{
    /// <summary>Positions per sequence the KV cache holds (<c>--max-seq-len</c>).</summary>
    public int MaxSeqLen { get; init; } = 512;

    /// <summary>Sequences the KV cache holds (<c>--max-batch</c>).</summary>
    public int MaxBatch { get; init; } = 1;

    /// <summary>Eviction policy name (<see cref="EvictionPolicies.Names"/>).</summary>
    public string Policy { get; init; } = "lru";

    /// <summary>Prefetch mode name (<see cref="Prefetchers.Names"/>).</summary>
    public string Prefetch { get; init; } = "none";

    /// <summary>At most this many expert slots even if the budget allows more (0 = as many as fit).</summary>
    public int MaxSlots { get; init; }

    /// <summary>Tokens computed per prefill pass; bounds activation memory.</summary>
    public int PrefillChunk { get; init; } = 64;

    /// <summary>Pinned staging buffers, i.e. expert fetches in flight at once (at least 2: double buffering).</summary>
    public int StagingBuffers { get; init; } = 4;

    /// <summary>On a device whose memory the host can address (the CPU device), read experts straight into their slot
    /// (verified there) instead of through a staging buffer and a copy.</summary>
    public bool ReadIntoHostSlots { get; init; } = true;

    /// <summary>The access sequence of a recorded run, for the "belady" policy.</summary>
    public IReadOnlyList<ExpertKey>? FutureAccesses { get; init; }

    /// <summary>Load every expert into a slot before the first token when all of them fit (the all-resident run).</summary>
    public bool PreloadWhenAllFit { get; init; } = true;
}
