using System.Numerics.Tensors;

namespace Fabric.Engine.Device.Cpu;

/// <summary>
/// The CPU device: SIMD kernels (System.Numerics.Tensors and Vector256) and multi-threaded matrix products where they
/// pay. The budget is enforced by the engine's own allocator. Ops run synchronously on the calling thread (plus the
/// thread pool inside large products); <see cref="CopyToSlotAsync"/> is a memcpy.
/// </summary>
public sealed unsafe class CpuDevice : IComputeDevice, IHostVisibleMemory
{
    /// <summary>Multiply-adds below which a product stays on one thread.</summary>
    private const long ParallelThreshold = 1L << 19;

    [ThreadStatic]
    private static float[]? t_rowScratch;

    [ThreadStatic]
    private static float[]? t_dotScratch;

    [ThreadStatic]
    private static float[]? t_latentScratch;

    private readonly int _threads;

    /// <remarks>budgetBytes: the whole device budget. threads: worker threads for large products (default: all cores).</remarks>
    public CpuDevice(long budgetBytes, int threads = 0)
    {
        Memory = new DeviceMemoryBudget(budgetBytes);
        _threads = threads > 0 ? threads : Environment.ProcessorCount;
    }

    public string Name => "cpu";

    public DeviceMemoryBudget Memory { get; }

    public DeviceBuffer Allocate(long bytes, string purpose)
    {
        Memory.Reserve(bytes, purpose);
        try
        {
            return new CpuBuffer(bytes, purpose, Memory);
        }
        catch
        {
            Memory.Release(bytes);
            throw;
        }
    }

    public void Upload(DeviceBuffer destination, long byteOffset, ReadOnlySpan<byte> source)
    {
        CheckRange(destination, byteOffset, source.Length);
        source.CopyTo(new Span<byte>(Cpu(destination).Pointer + byteOffset, source.Length));
    }

    public void Download(DeviceBuffer source, long byteOffset, Span<byte> destination)
    {
        CheckRange(source, byteOffset, destination.Length);
        new ReadOnlySpan<byte>(Cpu(source).Pointer + byteOffset, destination.Length).CopyTo(destination);
    }

    public ValueTask CopyToSlotAsync(DeviceBuffer slots, long byteOffset, ReadOnlyMemory<byte> staging, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Upload(slots, byteOffset, staging.Span);
        return ValueTask.CompletedTask;
    }

    public void Copy(DeviceBuffer source, long sourceByteOffset, DeviceBuffer destination, long destinationByteOffset, long bytes)
    {
        CheckRange(source, sourceByteOffset, bytes);
        CheckRange(destination, destinationByteOffset, bytes);
        Buffer.MemoryCopy(Cpu(source).Pointer + sourceByteOffset, Cpu(destination).Pointer + destinationByteOffset, bytes, bytes);
    }

    public Memory<byte> HostMemory(DeviceBuffer buffer, long byteOffset, int length)
    {
        CheckRange(buffer, byteOffset, length);
        return new UnmanagedMemory(Cpu(buffer).Pointer + byteOffset, length).Memory;
    }

    public void Synchronize()
    {
    }

    public void Embed(DeviceMatrix table, ReadOnlySpan<int> tokens, DeviceBuffer output)
    {
        var dim = table.Cols;
        var rowBytes = (long)dim * table.Type.Size();
        var src = Cpu(table.Buffer).Pointer + table.ByteOffset;
        var dst = Cpu(output).Floats();
        for (var r = 0; r < tokens.Length; r++)
        {
            if ((uint)tokens[r] >= (uint)table.Rows)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"Token id {tokens[r]} is outside the vocabulary of {table.Rows}.");
            Kernels.ToSingle(src + (tokens[r] * rowBytes), table.Type, dim, dst + ((long)r * dim));
        }
    }

    public void RmsNorm(DeviceBuffer input, DeviceMatrix weight, DeviceBuffer output, int rows, float epsilon)
    {
        var dim = weight.Cols;
        var w = RowScratch(dim);
        fixed (float* wp = w)
        {
            Kernels.ToSingle(Cpu(weight.Buffer).Pointer + weight.ByteOffset, weight.Type, dim, wp);
            for (var r = 0; r < rows; r++)
            {
                var x = new Span<float>(Cpu(input).Floats((long)r * dim), dim);
                var y = new Span<float>(Cpu(output).Floats((long)r * dim), dim);
                var meanSquare = TensorPrimitives.SumOfSquares(x) / dim;
                var scale = 1f / MathF.Sqrt(meanSquare + epsilon);
                TensorPrimitives.Multiply(x, scale, y);
                TensorPrimitives.Multiply(y, new ReadOnlySpan<float>(wp, dim), y);
            }
        }
    }

    public void MatMul(DeviceBuffer input, int rows, DeviceMatrix weight, DeviceBuffer output)
    {
        var x = Cpu(input).Floats();
        var y = Cpu(output).Floats();
        var w = Cpu(weight.Buffer).Pointer + weight.ByteOffset;
        var outDim = weight.Rows;
        var inDim = weight.Cols;
        var rowBytes = (long)inDim * weight.Type.Size();
        var type = weight.Type;
        var work = (long)rows * outDim * inDim;
        var chunks = work >= ParallelThreshold ? Math.Min(_threads * 4, outDim) : 1;
        if (chunks <= 1)
        {
            MatMulRange(x, rows, w, rowBytes, type, inDim, outDim, y, 0, outDim);
            return;
        }
        var per = (outDim + chunks - 1) / chunks;
        var xi = (nint)x;
        var yi = (nint)y;
        var wi = (nint)w;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = _threads }, c =>
        {
            var start = c * per;
            var end = Math.Min(outDim, start + per);
            if (start < end)
                MatMulRange((float*)xi, rows, (byte*)wi, rowBytes, type, inDim, outDim, (float*)yi, start, end);
        });
    }

    private static void MatMulRange(float* x, int rows, byte* w, long rowBytes, WeightType type, int inDim, int outDim, float* y, int start, int end)
    {
        var scratch = DotScratch(inDim);
        fixed (float* s = scratch)
        {
            if (rows == 1)
            {
                for (var o = start; o < end; o++)
                    y[o] = Kernels.Dot(x, w + (o * rowBytes), type, inDim, s);
                return;
            }
            // Several rows: widen each weight row once, then dot it with every input row.
            for (var o = start; o < end; o++)
            {
                Kernels.ToSingle(w + (o * rowBytes), type, inDim, s);
                var wr = new ReadOnlySpan<float>(s, inDim);
                // The same reduction as the one-row path (Kernels.Dot), so that a row's result never depends on the batch.
                for (var r = 0; r < rows; r++)
                    y[((long)r * outDim) + o] = type == WeightType.BF16 ? Kernels.DotWidenedBf16(x + ((long)r * inDim), s, inDim) : TensorPrimitives.Dot(new ReadOnlySpan<float>(x + ((long)r * inDim), inDim), wr);
            }
        }
    }

    public void Rope(DeviceBuffer x, int rows, int heads, int headDim, ReadOnlySpan<int> positions, float theta)
    {
        var half = headDim / 2;
        var data = Cpu(x).Floats();
        for (var r = 0; r < rows; r++)
        {
            var pos = positions[r];
            for (var i = 0; i < half; i++)
            {
                // As Hugging Face: inv_freq in fp32, angle = pos · inv_freq in fp32.
                var invFreq = 1f / MathF.Pow(theta, 2f * i / headDim);
                var angle = pos * invFreq;
                var cos = MathF.Cos(angle);
                var sin = MathF.Sin(angle);
                for (var h = 0; h < heads; h++)
                {
                    var p = data + ((long)r * heads * headDim) + (h * headDim);
                    var a = p[i];
                    var b = p[i + half];
                    p[i] = (a * cos) - (b * sin);
                    p[i + half] = (b * cos) + (a * sin);
                }
            }
        }
    }

    public void Attention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, int rows, int heads, KvCache cache, int layer, int sequence,
        ReadOnlySpan<int> positions, DeviceBuffer output)
    {
        var shape = cache.Shape;
        var d = shape.HeadDim;
        var kvRow = shape.RowFloats;
        var kv = Cpu(cache.Buffer).Floats();
        for (var r = 0; r < rows; r++)
        {
            if ((uint)positions[r] >= (uint)shape.MaxSeqLen)
                throw new ArgumentOutOfRangeException(nameof(positions), $"Position {positions[r]} is past the KV cache's {shape.MaxSeqLen} positions.");
            new ReadOnlySpan<float>(Cpu(k).Floats((long)r * kvRow), kvRow).CopyTo(new Span<float>(kv + shape.Index(layer, sequence, false, positions[r]), kvRow));
            new ReadOnlySpan<float>(Cpu(v).Floats((long)r * kvRow), kvRow).CopyTo(new Span<float>(kv + shape.Index(layer, sequence, true, positions[r]), kvRow));
        }
        var group = heads / shape.KvHeads;
        var scale = 1f / MathF.Sqrt(d);
        var kBase = kv + shape.Index(layer, sequence, false, 0);
        var vBase = kv + shape.Index(layer, sequence, true, 0);
        var scores = RowScratch(shape.MaxSeqLen);
        fixed (float* sc = scores)
        {
            for (var r = 0; r < rows; r++)
            {
                var length = positions[r] + 1;
                for (var h = 0; h < heads; h++)
                {
                    var qh = Cpu(q).Floats(((long)r * heads * d) + (h * d));
                    var kvh = h / group;
                    for (var t = 0; t < length; t++)
                        sc[t] = scale * TensorPrimitives.Dot(new ReadOnlySpan<float>(qh, d), new ReadOnlySpan<float>(kBase + ((long)t * kvRow) + (kvh * d), d));
                    var s = new Span<float>(sc, length);
                    TensorPrimitives.SoftMax(s, s);
                    var o = new Span<float>(Cpu(output).Floats(((long)r * heads * d) + (h * d)), d);
                    o.Clear();
                    for (var t = 0; t < length; t++)
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(vBase + ((long)t * kvRow) + (kvh * d), d), sc[t], o, o);
                }
            }
        }
    }

    public void SiluMul(DeviceBuffer gate, DeviceBuffer up, int count)
    {
        var g = new Span<float>(Cpu(gate).Floats(), count);
        var u = new ReadOnlySpan<float>(Cpu(up).Floats(), count);
        // silu(g) = g · sigmoid(g)
        var tmp = RowScratch(Math.Min(count, 1 << 16));
        for (var start = 0; start < count; start += tmp.Length)
        {
            var n = Math.Min(tmp.Length, count - start);
            var gs = g.Slice(start, n);
            var ts = tmp.AsSpan(0, n);
            TensorPrimitives.Sigmoid(gs, ts);
            TensorPrimitives.Multiply(gs, ts, gs);
            TensorPrimitives.Multiply(gs, u.Slice(start, n), gs);
        }
    }

    public void Add(DeviceBuffer target, DeviceBuffer addend, int count)
    {
        var t = new Span<float>(Cpu(target).Floats(), count);
        TensorPrimitives.Add(t, new ReadOnlySpan<float>(Cpu(addend).Floats(), count), t);
    }

    public void RouterTopK(DeviceBuffer logits, int rows, int experts, int topK, Span<int> indices, Span<float> weights) =>
        Routing.TopK(new ReadOnlySpan<float>(Cpu(logits).Floats(), rows * experts), rows, experts, topK, indices, weights);

    public void ExpertForward(ExpertView expert, DeviceBuffer input, ReadOnlySpan<int> inputRows, DeviceBuffer output, ReadOnlySpan<int> outputRows,
        ExpertScratch scratch)
    {
        var hidden = expert.W1.Cols;
        var inter = expert.W1.Rows;
        var n = inputRows.Length;
        if (n > scratch.MaxRows)
            throw new ArgumentException($"{n} rows exceed the expert scratch of {scratch.MaxRows}.", nameof(inputRows));
        var gathered = Cpu(scratch.Gathered).Floats();
        var src = Cpu(input).Floats();
        for (var j = 0; j < n; j++)
            new ReadOnlySpan<float>(src + ((long)inputRows[j] * hidden), hidden).CopyTo(new Span<float>(gathered + ((long)j * hidden), hidden));
        MatMul(scratch.Gathered, n, expert.W1, scratch.Gate);
        MatMul(scratch.Gathered, n, expert.W3, scratch.Up);
        SiluMul(scratch.Gate, scratch.Up, n * inter);
        MatMul(scratch.Gate, n, expert.W2, scratch.Output);
        var result = Cpu(scratch.Output).Floats();
        var dst = Cpu(output).Floats();
        for (var j = 0; j < n; j++)
            new ReadOnlySpan<float>(result + ((long)j * hidden), hidden).CopyTo(new Span<float>(dst + ((long)outputRows[j] * hidden), hidden));
    }

    public void MoeCombine(DeviceBuffer expertOutputs, ReadOnlySpan<float> weights, int rows, int topK, int hidden, DeviceBuffer target)
    {
        var src = Cpu(expertOutputs).Floats();
        var dst = Cpu(target).Floats();
        for (var r = 0; r < rows; r++)
        {
            var t = new Span<float>(dst + ((long)r * hidden), hidden);
            for (var j = 0; j < topK; j++)
            {
                var i = (r * topK) + j;
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(src + ((long)i * hidden), hidden), weights[i], t, t);
            }
        }
    }

    public void AddBias(DeviceBuffer x, int rows, DeviceMatrix bias)
    {
        var dim = bias.Cols;
        var b = RowScratch(dim);
        fixed (float* bp = b)
        {
            Kernels.ToSingle(Cpu(bias.Buffer).Pointer + bias.ByteOffset, bias.Type, dim, bp);
            var bs = new ReadOnlySpan<float>(bp, dim);
            for (var r = 0; r < rows; r++)
            {
                var row = new Span<float>(Cpu(x).Floats((long)r * dim), dim);
                TensorPrimitives.Add(row, bs, row);
            }
        }
    }

    public void Clamp(DeviceBuffer x, int count, float limit)
    {
        var v = new Span<float>(Cpu(x).Floats(), count);
        TensorPrimitives.Min(v, limit, v);
        TensorPrimitives.Max(v, -limit, v);
    }

    public void CopyColumns(DeviceBuffer source, int sourceStride, int sourceOffset, DeviceBuffer destination, int destinationStride, int destinationOffset,
        int rows, int width)
    {
        if (rows == 0 || width == 0)
            return;
        CheckRange(source, ((((long)rows - 1) * sourceStride) + sourceOffset) * sizeof(float), width * sizeof(float));
        CheckRange(destination, ((((long)rows - 1) * destinationStride) + destinationOffset) * sizeof(float), width * sizeof(float));
        var src = Cpu(source).Floats();
        var dst = Cpu(destination).Floats();
        for (var r = 0; r < rows; r++)
            new ReadOnlySpan<float>(src + ((long)r * sourceStride) + sourceOffset, width).CopyTo(new Span<float>(dst + ((long)r * destinationStride) + destinationOffset, width));
    }

    public void RopeInterleaved(DeviceBuffer x, int rows, int heads, int headStride, int offset, int ropeDim, ReadOnlySpan<int> positions, float theta)
    {
        var half = ropeDim / 2;
        var data = Cpu(x).Floats();
        Span<float> tmp = stackalloc float[ropeDim];
        for (var r = 0; r < rows; r++)
        {
            var pos = positions[r];
            for (var h = 0; h < heads; h++)
            {
                var p = data + ((long)r * heads * headStride) + ((long)h * headStride) + offset;
                for (var i = 0; i < half; i++)
                {
                    tmp[i] = p[2 * i];
                    tmp[i + half] = p[(2 * i) + 1];
                }
                for (var i = 0; i < half; i++)
                {
                    var invFreq = 1f / MathF.Pow(theta, 2f * i / ropeDim);
                    var angle = pos * invFreq;
                    var cos = MathF.Cos(angle);
                    var sin = MathF.Sin(angle);
                    var a = tmp[i];
                    var b = tmp[i + half];
                    p[i] = (a * cos) - (b * sin);
                    p[i + half] = (b * cos) + (a * sin);
                }
            }
        }
    }

    public void LatentAttention(DeviceBuffer q, DeviceBuffer latent, int rows, int heads, int nopeDim, int vDim, DeviceMatrix kvB, LatentKvCache cache,
        int layer, int sequence, ReadOnlySpan<int> positions, DeviceBuffer output)
    {
        var shape = cache.Shape;
        var rank = shape.LatentDim;
        var rope = shape.RopeDim;
        var row = shape.RowFloats;
        var qHead = nopeDim + rope;
        var c = Cpu(cache.Buffer).Floats();
        for (var r = 0; r < rows; r++)
        {
            if ((uint)positions[r] >= (uint)shape.MaxSeqLen)
                throw new ArgumentOutOfRangeException(nameof(positions), $"Position {positions[r]} is past the KV cache's {shape.MaxSeqLen} positions.");
            new ReadOnlySpan<float>(Cpu(latent).Floats((long)r * row), row).CopyTo(new Span<float>(c + shape.Index(layer, sequence, positions[r]), row));
        }
        var baseRow = c + shape.Index(layer, sequence, 0);
        var scale = 1f / MathF.Sqrt(qHead);
        var w = Cpu(kvB.Buffer).Pointer + kvB.ByteOffset;
        var rowBytes = (long)rank * kvB.Type.Size();
        var scratch = LatentScratch((3 * rank) + shape.MaxSeqLen);
        var qLatent = scratch.AsSpan(0, rank);
        var context = scratch.AsSpan(rank, rank);
        var scores = scratch.AsSpan(3 * rank, shape.MaxSeqLen);
        fixed (float* all = scratch)
        {
            var wide = all + (2 * rank);
            var contextPointer = all + rank;
            for (var r = 0; r < rows; r++)
            {
                var length = positions[r] + 1;
                for (var h = 0; h < heads; h++)
                {
                    var qh = Cpu(q).Floats(((long)r * heads * qHead) + ((long)h * qHead));
                    var kRows = (long)h * (nopeDim + vDim);
                    // The query absorbed into the latent space: q_nope · W_k[h] (the keys are W_k[h] · latent).
                    qLatent.Clear();
                    for (var i = 0; i < nopeDim; i++)
                    {
                        Kernels.ToSingle(w + ((kRows + i) * rowBytes), kvB.Type, rank, wide);
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(wide, rank), qh[i], qLatent, qLatent);
                    }
                    var qRope = new ReadOnlySpan<float>(qh + nopeDim, rope);
                    for (var t = 0; t < length; t++)
                    {
                        var kt = baseRow + ((long)t * row);
                        scores[t] = scale * (TensorPrimitives.Dot(qLatent, new ReadOnlySpan<float>(kt, rank)) + TensorPrimitives.Dot(qRope, new ReadOnlySpan<float>(kt + rank, rope)));
                    }
                    var s = scores[..length];
                    TensorPrimitives.SoftMax(s, s);
                    context.Clear();
                    for (var t = 0; t < length; t++)
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(baseRow + ((long)t * row), rank), s[t], context, context);
                    var o = Cpu(output).Floats(((long)r * heads * vDim) + ((long)h * vDim));
                    for (var j = 0; j < vDim; j++)
                        o[j] = Kernels.Dot(contextPointer, w + ((kRows + nopeDim + j) * rowBytes), kvB.Type, rank, wide);
                }
            }
        }
    }

    private static float[] LatentScratch(int n)
    {
        var s = t_latentScratch;
        if (s is null || s.Length < n)
            t_latentScratch = s = new float[Math.Max(n, 1024)];
        return s;
    }

    public void Dispose()
    {
    }

    private static CpuBuffer Cpu(DeviceBuffer buffer) =>
        buffer as CpuBuffer ?? throw new ArgumentException($"Buffer '{buffer.Purpose}' does not belong to the CPU device.", nameof(buffer));

    private static void CheckRange(DeviceBuffer buffer, long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > buffer.Bytes)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{length} bytes at offset {offset} run past '{buffer.Purpose}' ({buffer.Bytes} bytes).");
    }

    private static float[] RowScratch(int n)
    {
        var s = t_rowScratch;
        if (s is null || s.Length < n)
            t_rowScratch = s = new float[Math.Max(n, 1024)];
        return s;
    }

    private static float[] DotScratch(int n)
    {
        var s = t_dotScratch;
        if (s is null || s.Length < n)
            t_dotScratch = s = new float[Math.Max(n, 1024)];
        return s;
    }
}
