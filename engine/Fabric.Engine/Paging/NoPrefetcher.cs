namespace Fabric.Engine.Paging;

/// <summary>No prefetch: every absent expert is fetched on demand.</summary>
public sealed class NoPrefetcher : IPrefetcher
{
    public string Name => "none";

    public bool Prefetches => false;

    public bool WantsRouterPrediction => false;

    public void Observe(int layer, ReadOnlySpan<int> experts)
    {
    }

    public int Predict(int nextLayer, ReadOnlySpan<int> currentExperts, ReadOnlySpan<int> routerPrediction, Span<int> output) => 0;
}
