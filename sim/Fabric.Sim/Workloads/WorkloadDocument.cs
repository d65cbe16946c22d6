namespace Fabric.Sim.Workloads;

#pragma warning disable CA2227 // YamlDotNet fills these collections.

/// <summary>The YAML shape of a workload file (see sim/README.md).</summary>
public sealed class WorkloadDocument
{
    public string? Name { get; set; }

    /// <summary>A preset name (tiny, small, medium, mixtral-8x7b, moe-32x64) or a path to a config.json.</summary>
    public string? Model { get; set; }

    /// <summary>Where engines run: node names or <c>{i}</c> patterns with a count; empty means every gpu.</summary>
    public List<EnginePlacementDocument>? Engines { get; set; }

    /// <summary>Pool memory nodes that hold the experts (striped); empty means every pool node.</summary>
    public List<string>? Pool { get; set; }

    /// <summary>Sequences decoded together per engine.</summary>
    public int? Batch { get; set; }

    /// <summary>Decode steps per engine (tokens per sequence).</summary>
    public int? DecodeTokens { get; set; }

    /// <summary>Expert slots per engine; or <see cref="ResidentFraction"/> of all experts.</summary>
    public int? Slots { get; set; }
    public double? ResidentFraction { get; set; }

    public string? Policy { get; set; }
    public string? Prefetch { get; set; }

    /// <summary>Probability that the next-layer router prediction names an expert that is really routed.</summary>
    public double? PredictionAccuracy { get; set; }

    /// <summary>Context length the attention reads per sequence (KV cache), in tokens.</summary>
    public int? ContextTokens { get; set; }

    /// <summary>Fixed time per layer for kernel launches and synchronisation ("20us").</summary>
    public string? LayerOverhead { get; set; }

    public int? Seed { get; set; }

    /// <summary>How transfers share the links: max-min (exact, the default) or fifo (an approximation).</summary>
    public string? Sharing { get; set; }

    /// <summary>Recompute link shares only every this often ("10us"); absent or 0 is exact.</summary>
    public string? RateQuantum { get; set; }
    public RoutingDocument? Routing { get; set; }
}

public sealed class EnginePlacementDocument
{
    public string? Gpu { get; set; }
    public int? Count { get; set; }
}

/// <summary>Where routing decisions come from: synthetic, counts (a popularity JSON) or trace (a recorded JSONL).</summary>
public sealed class RoutingDocument
{
    public string? Kind { get; set; }

    /// <summary>Zipf exponent of each layer's popularity (synthetic).</summary>
    public double? Zipf { get; set; }

    /// <summary>Probability that a sequence keeps an expert it used at the same layer in the previous step.</summary>
    public double? TemporalReuse { get; set; }

    /// <summary>Probability that an expert choice follows from the previous layer's choice (a fixed mapping).</summary>
    public double? CrossLayer { get; set; }

    /// <summary>Per-layer popularity counts JSON ({"layer": {"expert": count}}), for kind counts.</summary>
    public string? Counts { get; set; }

    /// <summary>A routing trace (JSONL from <c>fabric-engine generate --trace-out</c>), for kind trace.</summary>
    public string? Trace { get; set; }

    /// <summary>With a trace: use the recorded compute_ns per layer instead of the roofline (default true).</summary>
    public bool? UseTraceCompute { get; set; }
}
