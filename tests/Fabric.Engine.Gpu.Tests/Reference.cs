namespace Fabric.Engine.Gpu.Tests;

/// <summary>Straightforward loops, FP64 accumulation: what each kernel must compute.</summary>
internal static class Reference
{
    public static float[] Project(float[] x, float[] w, int tokens, int inDim, int outDim)
    {
        var y = new float[tokens * outDim];
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < outDim; r++)
            {
                double sum = 0;
                for (int k = 0; k < inDim; k++)
                    sum += (double)w[r * inDim + k] * x[t * inDim + k];
                y[t * outDim + r] = (float)sum;
            }
        return y;
    }

    public static float[] RmsNorm(float[] x, float[] w, int tokens, int dim, float eps)
    {
        var y = new float[x.Length];
        for (int t = 0; t < tokens; t++)
        {
            double squares = 0;
            for (int k = 0; k < dim; k++)
                squares += (double)x[t * dim + k] * x[t * dim + k];
            double scale = 1.0 / Math.Sqrt(squares / dim + eps);
            for (int k = 0; k < dim; k++)
                y[t * dim + k] = (float)(x[t * dim + k] * scale * w[k]);
        }
        return y;
    }

    public static float[] Rope(float[] x, int[] positions, int heads, int headDim, double theta)
    {
        var y = (float[])x.Clone();
        int half = headDim / 2;
        for (int t = 0; t < positions.Length; t++)
            for (int h = 0; h < heads; h++)
            {
                int b = (t * heads + h) * headDim;
                for (int i = 0; i < half; i++)
                {
                    // Hugging Face: inverse frequency and angle in FP32; the rotation itself in FP64 here.
                    float inverseFrequency = 1f / MathF.Pow((float)theta, 2f * i / headDim);
                    double angle = positions[t] * inverseFrequency;
                    double x1 = x[b + i], x2 = x[b + i + half];
                    y[b + i] = (float)(x1 * Math.Cos(angle) - x2 * Math.Sin(angle));
                    y[b + i + half] = (float)(x2 * Math.Cos(angle) + x1 * Math.Sin(angle));
                }
            }
        return y;
    }

    public static float[] Attention(float[] q, float[] keys, float[] values, int[] positions, int heads, int kvHeads, int headDim)
    {
        var output = new float[positions.Length * heads * headDim];
        int group = heads / kvHeads;
        for (int t = 0; t < positions.Length; t++)
            for (int h = 0; h < heads; h++)
            {
                int kv = h / group, length = positions[t] + 1;
                var scores = new double[length];
                for (int j = 0; j < length; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < headDim; d++)
                        dot += (double)q[(t * heads + h) * headDim + d] * keys[(j * kvHeads + kv) * headDim + d];
                    scores[j] = dot / Math.Sqrt(headDim);
                }
                double max = scores.Max(), sum = scores.Sum(s => Math.Exp(s - max));
                for (int d = 0; d < headDim; d++)
                {
                    double acc = 0;
                    for (int j = 0; j < length; j++)
                        acc += Math.Exp(scores[j] - max) / sum * values[(j * kvHeads + kv) * headDim + d];
                    output[(t * heads + h) * headDim + d] = (float)acc;
                }
            }
        return output;
    }

    public static (int[] Experts, float[] Weights) Route(float[] logits, int tokens, int expertCount, int topK)
    {
        var experts = new int[tokens * topK];
        var weights = new float[tokens * topK];
        for (int t = 0; t < tokens; t++)
        {
            var row = logits.AsSpan(t * expertCount, expertCount).ToArray();
            double max = row.Max(), sum = row.Sum(l => Math.Exp(l - max));
            var order = Enumerable.Range(0, expertCount).OrderByDescending(e => row[e]).ThenBy(e => e).Take(topK).ToArray();
            double chosen = order.Sum(e => Math.Exp(row[e] - max) / sum);
            for (int s = 0; s < topK; s++)
            {
                experts[t * topK + s] = order[s];
                weights[t * topK + s] = (float)(Math.Exp(row[order[s]] - max) / sum / chosen);
            }
        }
        return (experts, weights);
    }

    public static float Silu(float g) => (float)(g / (1 + Math.Exp(-g)));

    /// <summary>Round-to-nearest-even FP32 → bfloat16 bits, as checkpoints store them.</summary>
    public static ushort ToBf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    public static float FromBf16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    public static float[] RandomFloats(Random random, int count, float scale = 1f)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return values;
    }

    public static void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double bound = tolerance * Math.Max(1.0, Math.Abs(expected[i]));
            Assert.True(Math.Abs(expected[i] - actual[i]) <= bound,
                $"{what}[{i}]: expected {expected[i]}, got {actual[i]} (tolerance {bound})");
        }
    }
}
