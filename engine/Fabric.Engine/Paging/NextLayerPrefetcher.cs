namespace Fabric.Engine.Paging;

/// <summary>
/// Next-layer prediction: the driver passes the current hidden state through the next layer's router (the residual
/// stream changes little between adjacent layers) and this prefetches its top choices.
/// </summary>
public sealed class NextLayerPrefetcher : IPrefetcher
{
    public string Name => "next-layer";

    public bool Prefetches => true;

    public bool WantsRouterPrediction => true;

    public void Observe(int layer, ReadOnlySpan<int> experts)
    {
    }

    public int Predict(int nextLayer, ReadOnlySpan<int> currentExperts, ReadOnlySpan<int> routerPrediction, Span<int> output)
    {
        var n = Math.Min(routerPrediction.Length, output.Length);
        routerPrediction[..n].CopyTo(output);
        return n;
    }
}
