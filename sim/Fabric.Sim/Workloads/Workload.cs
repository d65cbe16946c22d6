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
    /// <summary>
    /// For next-layer prefetch: the chance that the predictor names a really routed expert; null when not stated (a
    /// trace's recorded predictions are used, and synthetic routing takes <see cref="DefaultPredictionAccuracy"/>).
    /// 1 is an oracle that knows the next layer's routing.
    /// </summary>
    public double? PredictionAccuracy { get; init; }

    /// <summary>The accuracy synthetic and counts routing assume when the workload states none.</summary>
    public const double DefaultPredictionAccuracy = 0.9;

    /// <summary>Whether routing replays a recorded trace (the engine's or an imported one).</summary>
    public bool RoutingIsTrace { get; init; }

    /// <summary>Whether the routing source carries the recording engine's own next-layer predictions.</summary>
    public bool RoutingRecordsPredictions { get; init; }

    /// <summary>Whether a replay is fed the recorded predictions (rather than a predictor of a stated accuracy).</summary>
    public bool UsesRecordedPredictions => RoutingRecordsPredictions && PredictionAccuracy is null;

    /// <summary>Which predictor next-layer prefetch runs with, for reports; empty when nothing prefetches by prediction.</summary>
    public string Predictor => Prefetch != "next-layer" ? ""
        : UsesRecordedPredictions ? "recorded"
        : PredictionAccuracy == 1 ? "oracle"
        : PredictionAccuracy is { } p ? $"accuracy {p.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)}"
        : $"accuracy {DefaultPredictionAccuracy.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} by default";

    /// <summary>
    /// The workload as it is, unless it would replay next-layer prefetch from a trace that records no predictions
    /// without a stated accuracy: that would have to invent the predictor, so it is refused.
    /// </summary>
    public Workload PredictorChecked() =>
        Prefetch == "next-layer" && RoutingIsTrace && !RoutingRecordsPredictions && PredictionAccuracy is null
            ? throw new Topology.TopologyException($"The routing trace of '{Name}' records no next-layer predictions, so next-layer prefetch cannot be replayed as the engine ran it; give --predictor-accuracy P (or prediction_accuracy in the workload) to replay it with a predictor right with probability P, or choose another --prefetch.")
            : this;
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
