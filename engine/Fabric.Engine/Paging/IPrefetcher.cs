namespace Fabric.Engine.Paging;

/// <summary>
/// Predicts which experts the next layer will route to, so that their fetches overlap the current layer's compute.
/// Plain logic: it sees every layer's routed experts through <see cref="Observe"/>.
/// </summary>
public interface IPrefetcher
{
    /// <summary>The name used on the command line and in traces.</summary>
    string Name { get; }

    /// <summary>True when the driver should compute <c>routerPrediction</c> (the next layer's router applied to the current hidden state).</summary>
    bool WantsRouterPrediction { get; }

    /// <summary>False when <see cref="Predict"/> never names an expert: the driver may skip the prefetch step.</summary>
    bool Prefetches { get; }

    /// <summary>The routed experts of a visit of <paramref name="layer"/> (distinct, ascending).</summary>
    void Observe(int layer, ReadOnlySpan<int> experts);

    /// <summary>
    /// Writes the experts of layer <paramref name="nextLayer"/> worth fetching now into <paramref name="output"/> (best first)
    /// and returns how many. <paramref name="currentExperts"/> are the experts routed in the layer just begun;
    /// <paramref name="routerPrediction"/> is the next-layer router's top choices from the current hidden state (may be empty).
    /// </summary>
    int Predict(int nextLayer, ReadOnlySpan<int> currentExperts, ReadOnlySpan<int> routerPrediction, Span<int> output);
}
