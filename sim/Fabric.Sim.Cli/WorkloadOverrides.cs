using Fabric.Engine.Paging;
using Fabric.Sim.Network;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Cli;

/// <summary>
/// The options that override a workload's settings, checked as the workload file's own values are: a bad one is one
/// sentence and exit 2, not an error from deep inside the run.
/// </summary>
internal static class WorkloadOverrides
{
    public static int? Tokens(int? tokens) => tokens is null or > 0 ? tokens
        : throw new TopologyException($"--tokens {tokens}: give at least 1 token per engine.");

    public static int? Threads(int? threads) => threads is null or > 0 ? threads
        : throw new TopologyException($"--threads {threads}: give at least 1 thread.");

    /// <summary>At most every expert of the model, as the workload file's slots are.</summary>
    public static int? Slots(int? slots, Workload w) => slots is null ? null
        : slots > 0 ? Math.Min(slots.Value, w.Model.TotalExperts)
        : throw new TopologyException($"--slots {slots}: an engine needs at least one expert slot.");

    public static string Policy(string name) => EvictionPolicies.Names.Contains(name) ? name
        : throw new TopologyException($"--policy '{name}': there is no such policy; use one of {string.Join(", ", EvictionPolicies.Names)}.");

    public static Sharing Sharing(string name) => SharingNames.Parse(name)
        ?? throw new TopologyException($"--sharing '{name}': there is no such sharing model; use {string.Join(" or ", SharingNames.All)}.");

    /// <summary>The workload as it is, once its sharing model and its rate quantum go together.</summary>
    public static Workload SharingChecked(Workload w) => w.Sharing == Network.Sharing.Fifo && w.RateQuantumNs > 0
        ? throw new TopologyException("A rate quantum (rate_quantum, --rate-quantum) applies to max-min sharing only, not to fifo.")
        : w;

    /// <summary>--predictor-accuracy: a probability; 1 is an oracle and is reported as one.</summary>
    public static double? PredictorAccuracy(double? p) => p is null or (>= 0 and <= 1) ? p
        : throw new TopologyException($"--predictor-accuracy {p}: give a probability between 0 and 1 (1 is an oracle).");

    public static string Prefetch(string name) => Prefetchers.Names.Contains(name) ? name
        : throw new TopologyException($"--prefetch '{name}': there is no such prefetch mode; use one of {string.Join(", ", Prefetchers.Names)}.");
}
