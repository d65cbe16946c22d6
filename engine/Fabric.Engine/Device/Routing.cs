namespace Fabric.Engine.Device;

/// <summary>The router's softmax → top-k → renormalise, on the host; shared by devices and the engine's predictor.</summary>
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
            var row = logits.Slice(r * experts, experts);
            var max = float.NegativeInfinity;
            foreach (var v in row)
                max = MathF.Max(max, v);
            var sum = 0f;
            for (var e = 0; e < experts; e++)
            {
                p[e] = MathF.Exp(row[e] - max);
                sum += p[e];
            }
            var chosenSum = 0f;
            for (var j = 0; j < topK; j++)
            {
                var best = -1;
                for (var e = 0; e < experts; e++)
                {
                    if (p[e] >= 0 && (best < 0 || p[e] > p[best]))
                        best = e;
                }
                indices[(r * topK) + j] = best;
                weights[(r * topK) + j] = p[best] / sum;
                chosenSum += p[best] / sum;
                p[best] = -1;
            }
            for (var j = 0; j < topK; j++)
                weights[(r * topK) + j] /= chosenSum;
        }
    }
}
