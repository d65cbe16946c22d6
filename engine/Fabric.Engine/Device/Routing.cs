namespace Fabric.Engine.Device;

/// <summary>The router's softmax → top-k → renormalise, on the host; shared by devices, the engine's predictor and the family routers.</summary>
public static class Routing
{
    /// <summary>
    /// For each row of <paramref name="logits"/> [rows, experts]: softmax in fp32, the <paramref name="topK"/> largest
    /// probabilities (ties to the lower index, best first) into <paramref name="indices"/>, renormalised to sum 1 into
    /// <paramref name="weights"/> (both [rows, topK]).
    /// </summary>
    public static void TopK(ReadOnlySpan<float> logits, int rows, int experts, int topK, Span<int> indices, Span<float> weights)
    {
        Span<float> p = experts <= 256 ? stackalloc float[experts] : new float[experts];
        for (var r = 0; r < rows; r++)
        {
            Softmax(logits.Slice(r * experts, experts), p);
            var chosen = TakeTopK(p, topK, indices.Slice(r * topK, topK), weights.Slice(r * topK, topK));
            for (var j = 0; j < topK; j++)
                weights[(r * topK) + j] /= chosen;
        }
    }

    /// <summary>p[e] = exp(row[e] − max) / Σ, in fp32.</summary>
    public static void Softmax(ReadOnlySpan<float> row, Span<float> p)
    {
        var max = float.NegativeInfinity;
        foreach (var v in row)
            max = MathF.Max(max, v);
        var sum = 0f;
        for (var e = 0; e < row.Length; e++)
        {
            p[e] = MathF.Exp(row[e] - max);
            sum += p[e];
        }
        for (var e = 0; e < row.Length; e++)
            p[e] /= sum;
    }

    /// <summary>
    /// The <paramref name="indices"/>.Length largest of the probabilities <paramref name="p"/> (ties to the lower index,
    /// best first) with their values into <paramref name="weights"/>; marks them taken in <paramref name="p"/> (−1) and
    /// returns their sum.
    /// </summary>
    public static float TakeTopK(Span<float> p, int topK, Span<int> indices, Span<float> weights)
    {
        var chosen = 0f;
        for (var j = 0; j < topK; j++)
        {
            var best = -1;
            for (var e = 0; e < p.Length; e++)
            {
                if (p[e] >= 0 && (best < 0 || p[e] > p[best]))
                    best = e;
            }
            indices[j] = best;
            weights[j] = p[best];
            chosen += p[best];
            p[best] = -1;
        }
        return chosen;
    }
}
