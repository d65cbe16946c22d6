namespace Fabric.Engine.Paging;

/// <summary>What a pager is made of (<see cref="ExpertPager.Create"/>).</summary>
/// <param name="Layers">The model's MoE layers.</param>
/// <param name="ExpertsPerLayer">Routed experts in each layer.</param>
/// <param name="TopK">Experts routed per token: what the history prefetcher predicts per layer and the activation
/// policy's prior.</param>
/// <param name="Slots">Expert slots in device memory.</param>
/// <param name="Policy">The eviction policy's name (<see cref="EvictionPolicies.Names"/>).</param>
/// <param name="Prefetch">The prefetcher's name (<see cref="Prefetchers.Names"/>).</param>
public sealed record PagerSettings(int Layers, int ExpertsPerLayer, int TopK, int Slots, string Policy, string Prefetch)
{
    /// <summary>Slots the prefetcher leaves for demand fetches; top-k when null.</summary>
    public int? ReserveSlots { get; init; }

    /// <summary>The access sequence that "belady" replays (<see cref="BeladyPolicy.AccessSequence"/>); other policies ignore it.</summary>
    public IReadOnlyList<ExpertKey>? FutureAccesses { get; init; }
}
