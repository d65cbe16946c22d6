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
