using ILGPU;
using ILGPU.Algorithms;

namespace Fabric.Engine.Gpu.Kernels;

/// <summary>
/// The kernels the model families beyond Mixtral add: biases, clamping, strided copies, DeepSeek-V2's interleaved RoPE
/// and multi-head latent attention. One thread per output element, implicitly grouped.
/// </summary>
internal static class FamilyKernelBodies
{
    /// <summary>x[r, i] += bias[i]; index over rows × dim.</summary>
    public static void AddBias(Index1D index, ArrayView<float> x, WeightView bias, int dim) => x[index] += bias.Load(index % dim);

    /// <summary>x[i] = clamp(x[i], −limit, limit).</summary>
    public static void Clamp(Index1D index, ArrayView<float> x, float limit) => x[index] = XMath.Max(-limit, XMath.Min(limit, x[index]));

    /// <summary>dst[r · dstStride + dstOffset + i] = src[r · srcStride + srcOffset + i]; index over rows × width.</summary>
    public static void CopyColumns(Index1D index, ArrayView<float> source, int sourceStride, int sourceOffset, ArrayView<float> destination,
        int destinationStride, int destinationOffset, int width)
    {
        int r = index / width;
        int i = index - r * width;
        destination[(long)r * destinationStride + destinationOffset + i] = source[(long)r * sourceStride + sourceOffset + i];
    }

    /// <summary>De-interleaves each (row, head)'s rope part into scratch [rows · heads, ropeDim]: (x[2i], x[2i+1]) → (s[i], s[i + d/2]); index over rows × heads × ropeDim.</summary>
    public static void Deinterleave(Index1D index, ArrayView<float> x, ArrayView<float> scratch, int headStride, int offset, int ropeDim)
    {
        int head = index / ropeDim;
        int j = index - head * ropeDim;
        int half = ropeDim / 2;
        int source = j < half ? 2 * j : 2 * (j - half) + 1;
        scratch[index] = x[(long)head * headStride + offset + source];
    }

    /// <summary>Rotate-half RoPE from the de-interleaved scratch back into x; index over rows × heads × ropeDim / 2.</summary>
    public static void RotateFromScratch(Index1D index, ArrayView<float> x, ArrayView<float> scratch, ArrayView<int> positions, int heads, int headStride,
        int offset, int ropeDim, float theta)
    {
        int half = ropeDim / 2;
        int head = index / half;
        int i = index - head * half;
        int token = head / heads;
        float angle = KernelBodies.RopeAngle(positions[token], i, ropeDim, theta);
        float cos = XMath.Cos(angle);
        float sin = XMath.Sin(angle);
        float a = scratch[(long)head * ropeDim + i];
        float b = scratch[(long)head * ropeDim + i + half];
        long rowBase = (long)head * headStride + offset;
        x[rowBase + i] = a * cos - b * sin;
        x[rowBase + i + half] = b * cos + a * sin;
    }

    /// <summary>The query absorbed into the latent space: qLatent[h, c] = Σ_i q[h, i] · kvB[h·(nope+v) + i, c] for one row; index over heads × rank.</summary>
    public static void AbsorbQuery(Index1D index, ArrayView<float> q, WeightView kvB, ArrayView<float> qLatent, int rank, int nopeDim, int ropeDim, int vDim)
    {
        int h = index / rank;
        int c = index - h * rank;
        long qBase = (long)h * (nopeDim + ropeDim);
        long wBase = (long)h * (nopeDim + vDim);
        float sum = 0f;
        for (int i = 0; i < nopeDim; i++)
            sum += q[qBase + i] * kvB.Load((wBase + i) * rank + c);
        qLatent[index] = sum;
    }

    /// <summary>scores[h, t] = scale · (qLatent[h] · latent[t] + qRope[h] · ropeKey[t]) for t ≤ length − 1 of one row; index over heads × stride.</summary>
    public static void LatentScores(Index1D index, ArrayView<float> q, ArrayView<float> qLatent, ArrayView<float> cache, ArrayView<float> scores,
        int rank, int nopeDim, int ropeDim, int stride, int length, float scale)
    {
        int h = index / stride;
        int t = index - h * stride;
        if (t >= length)
            return;
        long row = (long)t * (rank + ropeDim);
        float sum = 0f;
        for (int c = 0; c < rank; c++)
            sum += qLatent[(long)h * rank + c] * cache[row + c];
        long qRope = (long)h * (nopeDim + ropeDim) + nopeDim;
        for (int i = 0; i < ropeDim; i++)
            sum += q[qRope + i] * cache[row + rank + i];
        scores[index] = scale * sum;
    }

    /// <summary>context[h, c] = Σ_t p[h, t] · latent[t, c] for one row; index over heads × rank.</summary>
    public static void LatentContext(Index1D index, ArrayView<float> scores, ArrayView<float> cache, ArrayView<float> context, int rank, int ropeDim, int stride, int length)
    {
        int h = index / rank;
        int c = index - h * rank;
        float sum = 0f;
        for (int t = 0; t < length; t++)
            sum += scores[(long)h * stride + t] * cache[(long)t * (rank + ropeDim) + c];
        context[index] = sum;
    }

    /// <summary>output[h, j] = Σ_c kvB[h·(nope+v) + nope + j, c] · context[h, c] for one row; index over heads × vDim.</summary>
    public static void LatentValues(Index1D index, ArrayView<float> context, WeightView kvB, ArrayView<float> output, int rank, int nopeDim, int vDim)
    {
        int h = index / vDim;
        int j = index - h * vDim;
        long w = ((long)h * (nopeDim + vDim) + nopeDim + j) * rank;
        float sum = 0f;
        for (int c = 0; c < rank; c++)
            sum += kvB.Load(w + c) * context[(long)h * rank + c];
        output[index] = sum;
    }
}
