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

    /// <summary>The routed experts of a visit of <paramref name="layer"/> (distinct, ascending).</summary>
    void Observe(int layer, ReadOnlySpan<int> experts);

    /// <summary>
    /// Writes the experts of layer <paramref name="nextLayer"/> worth fetching now into <paramref name="output"/> (best first)
    /// and returns how many. <paramref name="currentExperts"/> are the experts routed in the layer just begun;
    /// <paramref name="routerPrediction"/> is the next-layer router's top choices from the current hidden state (may be empty).
    /// </summary>
    int Predict(int nextLayer, ReadOnlySpan<int> currentExperts, ReadOnlySpan<int> routerPrediction, Span<int> output);
}

/// <summary>No prefetch: every absent expert is fetched on demand.</summary>
public sealed class NoPrefetcher : IPrefetcher
{
    public string Name => "none";

    public bool WantsRouterPrediction => false;

    public void Observe(int layer, ReadOnlySpan<int> experts)
    {
    }

    public int Predict(int nextLayer, ReadOnlySpan<int> currentExperts, ReadOnlySpan<int> routerPrediction, Span<int> output) => 0;
}

/// <summary>
/// Next-layer prediction: the driver passes the current hidden state through the next layer's router (the residual
/// stream changes little between adjacent layers) and this prefetches its top choices.
/// </summary>
public sealed class NextLayerPrefetcher : IPrefetcher
{
    public string Name => "next-layer";

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

/// <summary>
/// History-based prediction (MoE-Infinity-style activation matrix): counts, for each layer, how often expert j of the
/// following layer (the last layer wraps to layer 0 of the next step) followed expert i, with exponential decay, and
/// predicts the experts of the next layer with the highest summed counts given the current layer's experts.
/// </summary>
public sealed class HistoryPrefetcher : IPrefetcher
{
    private readonly int _layers;
    private readonly int _experts;
    private readonly int _width;
    private readonly double[] _transitions;
    private readonly double[] _popularity;
    private readonly double[] _scores;
    private readonly int[] _previous;
    private int _previousCount;
    private int _previousLayer = -1;
    private readonly double _decay;

    /// <remarks>width: How many experts to predict per layer (usually top-k).</remarks>
    public HistoryPrefetcher(int layers, int experts, int width, double decay = 0.98)
    {
        _layers = layers;
        _experts = experts;
        _width = width;
        _decay = decay;
        _transitions = new double[layers * experts * experts];
        _popularity = new double[layers * experts];
        _scores = new double[experts];
        _previous = new int[experts];
    }

    public string Name => "history";

    public bool WantsRouterPrediction => false;

    public void Observe(int layer, ReadOnlySpan<int> experts)
    {
        var pop = _popularity.AsSpan(layer * _experts, _experts);
        for (var j = 0; j < pop.Length; j++)
            pop[j] *= _decay;
        foreach (var e in experts)
            pop[e] += 1;
        if (_previousLayer >= 0 && (_previousLayer + 1) % _layers == layer)
        {
            // Row block of the previous layer: transitions[prevLayer][i][j].
            var block = _transitions.AsSpan(_previousLayer * _experts * _experts, _experts * _experts);
            for (var p = 0; p < _previousCount; p++)
            {
                var row = block.Slice(_previous[p] * _experts, _experts);
                for (var j = 0; j < row.Length; j++)
                    row[j] *= _decay;
                foreach (var e in experts)
                    row[e] += 1;
            }
        }
        var n = Math.Min(experts.Length, _previous.Length);
        experts[..n].CopyTo(_previous);
        _previousCount = n;
        _previousLayer = layer;
    }

    public int Predict(int nextLayer, ReadOnlySpan<int> currentExperts, ReadOnlySpan<int> routerPrediction, Span<int> output)
    {
        var currentLayer = (nextLayer - 1 + _layers) % _layers;
        var block = _transitions.AsSpan(currentLayer * _experts * _experts, _experts * _experts);
        var pop = _popularity.AsSpan(nextLayer * _experts, _experts);
        for (var j = 0; j < _experts; j++)
            _scores[j] = pop[j] * 1e-3;
        foreach (var i in currentExperts)
        {
            var row = block.Slice(i * _experts, _experts);
            for (var j = 0; j < _experts; j++)
                _scores[j] += row[j];
        }
        var count = Math.Min(Math.Min(_width, output.Length), _experts);
        var written = 0;
        for (var w = 0; w < count; w++)
        {
            var best = -1;
            var bestScore = 0.0;
            for (var j = 0; j < _experts; j++)
            {
                if (_scores[j] > bestScore)
                {
                    best = j;
                    bestScore = _scores[j];
                }
            }
            if (best < 0)
                break;
            output[written++] = best;
            _scores[best] = 0;
        }
        return written;
    }
}

/// <summary>Creates prefetchers by their command-line names.</summary>
public static class Prefetchers
{
    public static readonly string[] Names = ["none", "next-layer", "history"];

    public static IPrefetcher Create(string name, int layers, int expertsPerLayer, int topK) => name switch
    {
        "none" => new NoPrefetcher(),
        "next-layer" => new NextLayerPrefetcher(),
        "history" => new HistoryPrefetcher(layers, expertsPerLayer, topK),
        _ => throw new ArgumentException($"There is no prefetch mode named '{name}'; use one of {string.Join(", ", Names)}.", nameof(name)),
    };
}
