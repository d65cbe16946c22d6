namespace Fabric.Engine.Paging;

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

    public bool Prefetches => true;

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
