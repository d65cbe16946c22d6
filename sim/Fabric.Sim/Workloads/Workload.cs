using Fabric.Model;
using Fabric.Sim.Network;

namespace Fabric.Sim.Workloads;

/// <summary>
/// A resolved workload: the model, where engines run, the pool nodes, and the paging settings. A record so that a
/// sweep can vary one field with <c>with</c>.
/// </summary>
public sealed record Workload
{
    public required string Name { get; init; }
    public required ModelConfig Model { get; init; }

    /// <summary>Topology node names the engines run on, one engine each.</summary>
    public required IReadOnlyList<string> Engines { get; init; }

    /// <summary>Pool node names; expert (l, e) lives on <c>Pool[(l·E + e) mod Pool.Count]</c>. Empty: every pool node.</summary>
    public IReadOnlyList<string> Pool { get; init; } = [];

    public int Batch { get; init; } = 1;
    public int DecodeTokens { get; init; } = 64;

    /// <summary>Expert slots per engine.</summary>
    public required int Slots { get; init; }
    public string Policy { get; init; } = "lru";
    public string Prefetch { get; init; } = "none";
    public double PredictionAccuracy { get; init; } = 0.9;
    public int ContextTokens { get; init; } = 512;
    public long LayerOverheadNs { get; init; }

    /// <summary>
    /// How many times longer the resident experts of a visit take to compute when that visit's demand fetches are in
    /// flight beside them (1: not at all). On a host whose fetch path shares the cores with the compute (the loopback
    /// engine) they slow each other; <c>fabric-sim validate</c> calibrates it from its calibration runs.
    /// </summary>
    public double HitSlowdownBesideFetch { get; init; } = 1;
    public int Seed { get; init; } = 1;

    /// <summary>How transfers share the links; max-min is exact, fifo an approximation that runs faster.</summary>
    public Sharing Sharing { get; init; } = Sharing.MaxMin;

    /// <summary>Recompute link shares only on multiples of this many ns (0: exactly at every change); an approximation.</summary>
    public long RateQuantumNs { get; init; }

    /// <summary>Makes the routing source of engine <c>index</c>; called twice for Belady (once to record the future).</summary>
    public required Func<int, IRoutingSource> Routing { get; init; }

    /// <summary>Whether step 0 of the routing is a prefill (a recorded trace), not a decode step.</summary>
    public bool FirstStepIsPrefill { get; init; }

    /// <summary>A one-line description of where routing comes from, for reports.</summary>
    public string RoutingDescription { get; init; } = "";
}
