using ILGPU;
using ILGPU.Algorithms;

namespace Fabric.Engine.Gpu.Kernels;

/// <summary>
/// The kernels of the Mixtral forward pass. Layouts are row-major: activations [tokens, dim] FP32, a projection's weight
/// [out, in] as Hugging Face's Linear stores it, the KV cache of a layer [maxSeq, kvHeads * headDim] FP32.
/// Methods taking no index argument are explicitly grouped: one warp-sized group per output row, reduced with shuffles.
/// </summary>
internal static class KernelBodies
{
    /// <summary>y[t, r] = Σ_k w[r, k] · x[t, k]; one group per (t, r), grid = tokens × outDim.</summary>
    public static void Gemv(ArrayView<float> x, WeightView w, ArrayView<float> y, int inDim, int outDim)
    {
        int item = Grid.IdxX;
        int token = item / outDim;
        int row = item - token * outDim;
        int lane = Group.IdxX;
        int width = Group.DimX;
        long weightBase = (long)row * inDim;
        long inputBase = (long)token * inDim;
        float sum = 0f;
        for (int k = lane; k < inDim; k += width)
            sum += w.Load(weightBase + k) * x[inputBase + k];
        sum = GroupSum(sum, width);
        if (lane == 0)
            y[(long)token * outDim + row] = sum;
    }

    /// <summary>
    /// The 16-bit GEMV with 8-byte weight loads (four BF16/F16 elements a lane, so a warp reads whole cache lines):
    /// w is the weight as ulong quads, inDim a multiple of 4; one group per (t, r).
    /// </summary>
    public static void GemvQuads(ArrayView<float> x, ArrayView<ulong> w, int kind, ArrayView<float> y, int inDim, int outDim)
    {
        int item = Grid.IdxX;
        int token = item / outDim;
        int row = item - token * outDim;
        int lane = Group.IdxX;
        int width = Group.DimX;
        int quads = inDim / 4;
        long weightBase = (long)row * quads;
        long inputBase = (long)token * inDim;
        float sum = 0f;
        for (int q = lane; q < quads; q += width)
        {
            ulong bits = w[weightBase + q];
            long k = inputBase + 4L * q;
            sum += Widen((ushort)bits, kind) * x[k]
                + Widen((ushort)(bits >> 16), kind) * x[k + 1]
                + Widen((ushort)(bits >> 32), kind) * x[k + 2]
                + Widen((ushort)(bits >> 48), kind) * x[k + 3];
        }
        sum = GroupSum(sum, width);
        if (lane == 0)
            y[(long)token * outDim + row] = sum;
    }

    /// <summary>y[t, r] = Σ_k w[r, k] · x[t, k]; one thread per (t, r): the GEMV for the CPU accelerator, where group barriers are costly.</summary>
    public static void GemvRowPerThread(Index1D index, ArrayView<float> x, WeightView w, ArrayView<float> y, int inDim, int outDim)
    {
        int token = index / outDim;
        int row = index - token * outDim;
        long weightBase = (long)row * inDim;
        long inputBase = (long)token * inDim;
        float sum = 0f;
        for (int k = 0; k < inDim; k++)
            sum += w.Load(weightBase + k) * x[inputBase + k];
        y[index] = sum;
    }

    /// <summary>y[t] = x[t] / sqrt(mean(x[t]²) + eps) · w; one group per token.</summary>
    public static void RmsNorm(ArrayView<float> x, WeightView w, ArrayView<float> y, int dim, float eps)
    {
        int token = Grid.IdxX;
        int lane = Group.IdxX;
        int width = Group.DimX;
        long rowBase = (long)token * dim;
        float squares = 0f;
        for (int k = lane; k < dim; k += width)
        {
            float v = x[rowBase + k];
            squares += v * v;
        }
        squares = GroupSum(squares, width);
        float scale = XMath.Rsqrt(squares / dim + eps);
        for (int k = lane; k < dim; k += width)
            y[rowBase + k] = x[rowBase + k] * scale * w.Load(k);
    }

    /// <summary>
    /// Softmax in place over the first positions[t] + 1 entries of each scores row (t, h): the causal window of a
    /// query at absolute position positions[t]. One group per row; rows are [tokens, heads, stride].
    /// </summary>
    public static void CausalSoftmax(ArrayView<float> scores, ArrayView<int> positions, int heads, int stride)
    {
        int rowIndex = Grid.IdxX;
        int token = rowIndex / heads;
        int lane = Group.IdxX;
        int width = Group.DimX;
        int length = positions[token] + 1;
        long rowBase = (long)rowIndex * stride;
        float max = float.NegativeInfinity;
        for (int j = lane; j < length; j += width)
            max = XMath.Max(max, scores[rowBase + j]);
        max = GroupMax(max, width);
        float sum = 0f;
        for (int j = lane; j < length; j += width)
        {
            float e = XMath.Exp(scores[rowBase + j] - max);
            scores[rowBase + j] = e;
            sum += e;
        }
        sum = GroupSum(sum, width);
        float inverse = 1f / sum;
        for (int j = lane; j < length; j += width)
            scores[rowBase + j] *= inverse;
    }

    /// <summary>
    /// scores[t, h, j] = q[t, h] · k[j, h / group] / sqrt(headDim) for j ≤ positions[t]; index over tokens × heads × stride.
    /// </summary>
    public static void AttentionScores(
        Index1D index, ArrayView<float> q, ArrayView<float> keyCache, ArrayView<float> scores, ArrayView<int> positions,
        int heads, int kvHeads, int headDim, int stride)
    {
        int j = index % stride;
        int row = index / stride;
        int head = row % heads;
        int token = row / heads;
        if (j > positions[token])
            return;
        int kvHead = head / (heads / kvHeads);
        long queryBase = ((long)token * heads + head) * headDim;
        long keyBase = ((long)j * kvHeads + kvHead) * headDim;
        float dot = 0f;
        for (int d = 0; d < headDim; d++)
            dot += q[queryBase + d] * keyCache[keyBase + d];
        scores[(long)row * stride + j] = dot * XMath.Rsqrt(headDim);
    }

    /// <summary>output[t, h, d] = Σ_{j ≤ positions[t]} p[t, h, j] · v[j, h / group, d]; index over tokens × heads × headDim.</summary>
    public static void AttentionValues(
        Index1D index, ArrayView<float> probabilities, ArrayView<float> valueCache, ArrayView<float> output,
        ArrayView<int> positions, int heads, int kvHeads, int headDim, int stride)
    {
        int d = index % headDim;
        int row = index / headDim;
        int head = row % heads;
        int token = row / heads;
        int kvHead = head / (heads / kvHeads);
        int length = positions[token] + 1;
        long probabilityBase = (long)row * stride;
        float sum = 0f;
        for (int j = 0; j < length; j++)
            sum += probabilities[probabilityBase + j] * valueCache[((long)j * kvHeads + kvHead) * headDim + d];
        output[index] = sum;
    }

    /// <summary>
    /// Rotary embedding in place, Hugging Face's rotate_half convention: within each head, element i pairs with
    /// i + headDim/2 and turns by positions[t] · theta^(-2i/headDim), inverse frequency and angle in FP32 as Hugging Face computes them. Index over tokens × heads × headDim/2.
    /// </summary>
    public static void Rope(Index1D index, ArrayView<float> x, ArrayView<int> positions, int heads, int headDim, float theta)
    {
        int half = headDim / 2;
        int i = index % half;
        int row = index / half;
        int token = row / heads;
        long rowBase = (long)row * headDim;
        float angle = RopeAngle(positions[token], i, headDim, theta);
        float cos = XMath.Cos(angle);
        float sin = XMath.Sin(angle);
        float x1 = x[rowBase + i];
        float x2 = x[rowBase + i + half];
        x[rowBase + i] = x1 * cos - x2 * sin;
        x[rowBase + i + half] = x2 * cos + x1 * sin;
    }

    /// <summary>
    /// The rotary angle of pair <paramref name="i"/> of <paramref name="dim"/> at <paramref name="position"/>, as Hugging
    /// Face computes it (the inverse frequency theta^(−2i/dim) in FP32, the angle as its FP32 product with the position),
    /// then reduced to [−π, π] in FP64. The GPU's fast sin/cos have no range reduction of their own (about 3e-3 rad of
    /// phase error at position 32k), and its fast pow is a few ulps off, which the angle multiplies by the position: so
    /// pow runs in FP64 and is rounded once.
    /// </summary>
    internal static float RopeAngle(int position, int i, int dim, float theta)
    {
        float inverseFrequency = 1f / (float)XMath.Pow((double)theta, (double)(2f * i / dim));
        float angle = position * inverseFrequency;
        double turns = XMath.Floor(angle * (1.0 / (2.0 * Math.PI)) + 0.5);
        return (float)(angle - (turns * (2.0 * Math.PI)));
    }

    /// <summary>gate[i] = silu(gate[i]) · up[i] in place.</summary>
    public static void SiluMul(Index1D index, ArrayView<float> gate, ArrayView<float> up)
    {
        float g = gate[index];
        gate[index] = g / (1f + XMath.Exp(-g)) * up[index];
    }

    /// <summary>y[i] += x[i].</summary>
    public static void Add(Index1D index, ArrayView<float> y, ArrayView<float> x) => y[index] += x[index];

    /// <summary>dst[rows[r], d] += scale[r] · src[r, d]; the rows of one launch must be distinct. Index over n × dim.</summary>
    public static void ScaledAddRows(
        Index1D index, ArrayView<float> destination, ArrayView<float> source, ArrayView<int> rows, ArrayView<float> scale, int dim)
    {
        int r = index / dim;
        int d = index - r * dim;
        destination[(long)rows[r] * dim + d] += scale[r] * source[index];
    }

    /// <summary>dst[rows[r], d] = src[r, d]; index over n × dim.</summary>
    public static void ScatterRows(Index1D index, ArrayView<float> destination, ArrayView<float> source, ArrayView<int> rows, int dim)
    {
        int r = index / dim;
        int d = index - r * dim;
        destination[(long)rows[r] * dim + d] = source[index];
    }

    /// <summary>target[r, d] += Σ_j weights[r·topK + j] · outputs[r·topK + j, d], j in rank order; index over rows × dim.</summary>
    public static void MoeCombine(Index1D index, ArrayView<float> outputs, ArrayView<float> weights, ArrayView<float> target, int topK, int dim)
    {
        int r = index / dim;
        int d = index - r * dim;
        float sum = target[index];
        for (int j = 0; j < topK; j++)
        {
            long pair = (long)r * topK + j;
            sum += weights[pair] * outputs[pair * dim + d];
        }
        target[index] = sum;
    }

    /// <summary>dst[r, d] = src[rows[r], d]; index over n × dim.</summary>
    public static void GatherRows(Index1D index, ArrayView<float> destination, ArrayView<float> source, ArrayView<int> rows, int dim)
    {
        int r = index / dim;
        int d = index - r * dim;
        destination[index] = source[(long)rows[r] * dim + d];
    }

    /// <summary>output[t, d] = table[ids[t], d] as FP32; index over tokens × dim.</summary>
    public static void Embed(Index1D index, WeightView table, ArrayView<int> ids, ArrayView<float> output, int dim)
    {
        int t = index / dim;
        int d = index - t * dim;
        output[index] = table.Load((long)ids[t] * dim + d);
    }

    /// <summary>
    /// Mixtral's router for one token: softmax over the expert logits in FP32, the top k (lowest index wins a tie),
    /// weights renormalised to sum to one. Index over tokens.
    /// </summary>
    public static void RouterTopK(Index1D index, ArrayView<float> logits, ArrayView<int> experts, ArrayView<float> weights, int expertCount, int topK)
    {
        long logitBase = (long)index.X * expertCount;
        long outBase = (long)index.X * topK;
        float max = float.NegativeInfinity;
        for (int e = 0; e < expertCount; e++)
            max = XMath.Max(max, logits[logitBase + e]);
        float sum = 0f;
        for (int e = 0; e < expertCount; e++)
            sum += XMath.Exp(logits[logitBase + e] - max);
        float chosen = 0f;
        for (int s = 0; s < topK; s++)
        {
            int best = -1;
            float bestLogit = float.NegativeInfinity;
            for (int e = 0; e < expertCount; e++)
            {
                float v = logits[logitBase + e];
                if (best >= 0 && v <= bestLogit)
                    continue;
                bool taken = false;
                for (int p = 0; p < s; p++)
                    taken |= experts[outBase + p] == e;
                if (!taken)
                {
                    best = e;
                    bestLogit = v;
                }
            }
            float probability = XMath.Exp(bestLogit - max) / sum;
            experts[outBase + s] = best;
            weights[outBase + s] = probability;
            chosen += probability;
        }
        for (int s = 0; s < topK; s++)
            weights[outBase + s] /= chosen;
    }

    private static float Widen(ushort bits, int kind) =>
        kind == (int)Fabric.Engine.Device.WeightType.BF16 ? WeightView.Bf16ToSingle(bits) : WeightView.HalfToSingle(bits);

    private static float GroupSum(float value, int width)
    {
        for (int offset = width / 2; offset > 0; offset /= 2)
            value += Warp.ShuffleXor(value, offset);
        return value;
    }

    private static float GroupMax(float value, int width)
    {
        for (int offset = width / 2; offset > 0; offset /= 2)
            value = XMath.Max(value, Warp.ShuffleXor(value, offset));
        return value;
    }
}
