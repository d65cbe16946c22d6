namespace Fabric.Engine.Paging;

/// <summary>Creates policies by their command-line names.</summary>
public static class EvictionPolicies
{
    /// <summary>The names <see cref="Create"/> accepts.</summary>
    public static readonly string[] Names = ["lru", "lfu", "activation", "belady"];

    /// <summary>Creates a policy; <paramref name="futureAccesses"/> is required for "belady" only.</summary>
    public static IEvictionPolicy Create(string name, int layers, int expertsPerLayer, int topK, IReadOnlyList<ExpertKey>? futureAccesses = null) =>
        name switch
        {
            "lru" => new LruPolicy(),
            "lfu" => new LfuPolicy(layers, expertsPerLayer),
            "activation" => new ActivationPolicy(layers, expertsPerLayer, topK),
            "belady" => new BeladyPolicy(layers, expertsPerLayer,
                futureAccesses ?? throw new ArgumentException("Belady needs the future access sequence (a recorded trace).", nameof(futureAccesses))),
            _ => throw new ArgumentException($"There is no eviction policy named '{name}'; use one of {string.Join(", ", Names)}.", nameof(name)),
        };
}
