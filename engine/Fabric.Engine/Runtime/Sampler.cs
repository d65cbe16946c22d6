namespace Fabric.Engine.Runtime;

/// <summary>Picks the next token from logits: greedy (temperature 0) or temperature with nucleus (top-p) sampling from a seed.</summary>
public sealed class Sampler
{
    private readonly Random _random;
    private float[] _probabilities = [];
    private int[] _order = [];

    public Sampler(float temperature = 0, float topP = 1, int seed = 0)
    {
        Temperature = temperature;
        TopP = topP;
        _random = new Random(seed);
    }

    public float Temperature { get; }

    public float TopP { get; }

    public int Next(ReadOnlySpan<float> logits)
    {
        if (Temperature <= 0)
            return ArgMax(logits);
        var n = logits.Length;
        if (_probabilities.Length < n)
        {
            _probabilities = new float[n];
            _order = new int[n];
        }
        var max = float.NegativeInfinity;
        foreach (var l in logits)
            max = MathF.Max(max, l);
        double sum = 0;
        for (var i = 0; i < n; i++)
        {
            _probabilities[i] = MathF.Exp((logits[i] - max) / Temperature);
            sum += _probabilities[i];
            _order[i] = i;
        }
        var probabilities = _probabilities;
        Array.Sort(_order, 0, n, Comparer<int>.Create((a, b) => probabilities[b].CompareTo(probabilities[a]) is var c && c != 0 ? c : a.CompareTo(b)));
        double kept = 0;
        var count = 0;
        while (count < n)
        {
            kept += _probabilities[_order[count]] / sum;
            count++;
            if (kept >= TopP)
                break;
        }
        var x = _random.NextDouble() * kept;
        for (var i = 0; i < count; i++)
        {
            x -= _probabilities[_order[i]] / sum;
            if (x <= 0)
                return _order[i];
        }
        return _order[count - 1];
    }

    /// <summary>The index of the largest logit (the lowest index on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
                best = i;
        }
        return best;
    }
}
