using System.Runtime.InteropServices;
using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Gpu.Kernels;
using Fabric.Engine.Gpu.Memory;
using ILGPU;
using ILGPU.Runtime;

namespace Fabric.Engine.Gpu;

/// <summary>
/// The engine's compute device on an ILGPU accelerator: CUDA (<c>--device cuda[:N]</c>) or ILGPU's CPU accelerator
/// (<c>--device ilgpu-cpu</c>, the same kernels on host threads).
/// <para>
/// Memory: the whole <c>--device-memory</c> budget is taken from the driver once (<see cref="DeviceArena"/>, plus
/// <see cref="AlignmentHeadroomBytes"/> for the 64-byte alignment of regions) and every buffer, this device's own
/// scratch included, is carved from it and counted in <see cref="Memory"/>, which refuses anything past the budget.
/// </para>
/// <para>
/// Streams: ops are enqueued on one compute stream; small per-op arrays travel through a pinned
/// <see cref="ParameterRing"/> without synchronising. <see cref="CopyToSlotAsync"/> copies from the engine's pinned
/// staging (registered page-locked once per staging buffer) on a separate copy stream; its task completes when the
/// bytes are in the slot. A slot the engine reassigns may hold an expert whose computation is still queued (a layer
/// that routes to more experts than there are slots releases experts as soon as their work is enqueued), and a fresh
/// allocation is zeroed on the compute stream: so every slot copy first makes the copy stream wait, on the device, for
/// a compute fence recorded at that moment (<see cref="OrderingAudit"/> checks this in tests).
/// </para>
/// </summary>
public sealed class IlgpuDevice : IComputeDevice
{
    private readonly GpuAccelerator _gpu;
    private readonly Accelerator _accelerator;
    private readonly AcceleratorStream _compute;
    private readonly GpuKernels _kernels;
    private readonly FamilyKernels _familyKernels;
    private readonly DeviceArena _arena;
    private readonly CopyQueue _copies;
    private readonly StreamFences _computeFences;
    private readonly Lock _copyGate = new();
    private readonly Dictionary<NativeBuffer, PinnedStaging> _registered = [];
    private readonly IlgpuBuffer _scratch;
    private readonly ParameterRing _parameters;
    private readonly ArrayView<float> _scores;

    /// <summary>Arena bytes beyond the budget for alignment padding: 1024 regions' worth.</summary>
    public const long AlignmentHeadroomBytes = 1024L * DeviceArena.AlignmentBytes;

    /// <summary>The device scratch a budget of <paramref name="budgetBytes"/> gets by default: a sixteenth, 64 KiB to 16 MiB.</summary>
    public static long DefaultScratchBytes(long budgetBytes) => Math.Clamp(budgetBytes / 16, 64L << 10, 16L << 20);

    /// <summary>The smallest budget whose default scratch still leaves <paramref name="engineBytes"/> for the engine.</summary>
    public static long BudgetLeaving(long engineBytes)
    {
        long budget = engineBytes;
        for (long next = engineBytes + DefaultScratchBytes(budget); next != budget; next = engineBytes + DefaultScratchBytes(budget))
            budget = next;
        return budget;
    }

    /// <summary>
    /// Takes <paramref name="gpu"/> (owned from now on) and <paramref name="budgetBytes"/> of its memory.
    /// <paramref name="scratchBytes"/> (0: a sixteenth of the budget, 64 KiB to 16 MiB) holds attention scores and op parameters.
    /// </summary>
    public IlgpuDevice(GpuAccelerator gpu, long budgetBytes, long scratchBytes = 0)
    {
        _gpu = gpu;
        try
        {
            _accelerator = gpu.Accelerator;
            Memory = new DeviceMemoryBudget(budgetBytes);
            _arena = new DeviceArena(_accelerator, budgetBytes + AlignmentHeadroomBytes);
            _compute = _accelerator.CreateStream();
            _kernels = new GpuKernels(_accelerator);
            _familyKernels = new FamilyKernels(_accelerator);
            _copies = new CopyQueue(_accelerator);
            _computeFences = new StreamFences(_compute);
            if (scratchBytes <= 0)
                scratchBytes = DefaultScratchBytes(budgetBytes);
            _scratch = (IlgpuBuffer)Allocate(scratchBytes, "ILGPU device scratch (attention scores, op parameters)");
            long parameterBytes = Math.Min(256L << 10, scratchBytes / 4) / 256 * 256;
            _parameters = new ParameterRing(_accelerator, _compute, _scratch.View.SubView(0, parameterBytes));
            long scoreFloats = (scratchBytes - parameterBytes) / sizeof(float);
            _scores = _scratch.View.SubView(parameterBytes, scoreFloats * sizeof(float)).Cast<float>();
        }
        catch
        {
            _arena?.Dispose();
            gpu.Dispose();
            throw;
        }
    }

    /// <summary>Opens <paramref name="device"/> (<c>ilgpu-cpu</c>, <c>cuda</c>, <c>cuda:N</c>) with a budget of <paramref name="budgetBytes"/>.</summary>
    public static IlgpuDevice Open(string device, long budgetBytes, long scratchBytes = 0) =>
        new(IlgpuAccelerators.Open(device), budgetBytes, scratchBytes);

    public string Name => _gpu.Spec.ToString();

    /// <summary>The accelerator's name as its driver reports it.</summary>
    public string AcceleratorName => _gpu.Name;

    /// <summary>True when FP32 projections go through cuBLAS.</summary>
    public bool UsesBlas => _kernels.UsesBlas;

    /// <summary>Why FP32 projections use the GEMV kernel instead of cuBLAS on a CUDA device (null when cuBLAS is used or the device is not CUDA).</summary>
    public string? BlasFallbackReason => _kernels.BlasFallbackReason;

    /// <summary>The open accelerator (owned by this device).</summary>
    public GpuAccelerator Gpu => _gpu;

    public DeviceMemoryBudget Memory { get; }

    public DeviceBuffer Allocate(long bytes, string purpose)
    {
        Bind();
        Memory.Reserve(bytes, purpose);
        if (!_arena.TryAllocate(bytes, out var view))
        {
            Memory.Release(bytes);
            throw new InsufficientDeviceMemoryException(
                $"The device memory budget of {ByteSize.Format(Memory.CapacityBytes)} has no free range for {purpose} ({ByteSize.Format(bytes)}): " +
                $"{ByteSize.Format(_arena.AllocatedBytes)} are allocated in {DeviceArena.AlignmentBytes}-byte-aligned regions.",
                _arena.AllocatedBytes + DeviceArena.AlignedSize(bytes));
        }
        if (bytes > 0)
            view.MemSetToZero(_compute);
        return new IlgpuBuffer(this, view, bytes, purpose);
    }

    internal void Free(IlgpuBuffer buffer)
    {
        _arena.Free(buffer.View);
        Memory.Release(buffer.Bytes);
    }

    public void Upload(DeviceBuffer destination, long byteOffset, ReadOnlySpan<byte> source)
    {
        Bind();
        var view = Range(destination, byteOffset, source.Length);
        if (source.Length > 0)
            view.CopyFromCPU(_compute, source);
    }

    public void Download(DeviceBuffer source, long byteOffset, Span<byte> destination)
    {
        Bind();
        var view = Range(source, byteOffset, destination.Length);
        if (destination.Length > 0)
            view.CopyToCPU(_compute, destination);
        else
            _compute.Synchronize();
    }

    public ValueTask CopyToSlotAsync(DeviceBuffer slots, long byteOffset, ReadOnlyMemory<byte> staging, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var destination = Range(slots, byteOffset, staging.Length);
        if (staging.Length == 0)
            return ValueTask.CompletedTask;
        if (!MemoryMarshal.TryGetMemoryManager<byte, NativeBuffer>(staging, out var native, out int start, out int length))
        {
            // Not the engine's pinned staging: a synchronous copy (pageable memory cannot be DMA'd asynchronously).
            lock (_copyGate)
            {
                Bind();
                WaitForSlotReaders(slots, byteOffset, staging.Length);
                destination.CopyFromCPU(_copies.Stream, staging.Span);
            }
            return ValueTask.CompletedTask;
        }
        StreamTicket ticket;
        lock (_copyGate)
        {
            Bind();
            WaitForSlotReaders(slots, byteOffset, length);
            if (!_registered.TryGetValue(native, out var pinned))
            {
                _registered[native] = pinned = new PinnedStaging(_accelerator, native);
                native.Freeing += Unregister;
            }
            ticket = _copies.Enqueue(pinned, start, destination.SubView(0, length));
        }
        if (_copies.IsComplete(ticket))
            return ValueTask.CompletedTask;
        return new ValueTask(Task.Run(() =>
        {
            _accelerator.Bind();
            _copies.Wait(ticket);
        }, cancellationToken));
    }

    /// <summary>Set to check, in tests, that slot copies wait for the expert computations that read the slot before.</summary>
    public SlotOrderingAudit? OrderingAudit { get; set; }

    /// <summary>
    /// Makes the copy stream wait, on the device, for all compute enqueued so far: the expert computation that last read
    /// this slot (its expert was evicted after the computation was queued) and the zeroing of a fresh allocation. Called
    /// under the copy gate, before the copy is enqueued.
    /// </summary>
    private void WaitForSlotReaders(DeviceBuffer slots, long byteOffset, long bytes)
    {
        var fence = _computeFences.Record();
        _copies.After(_computeFences, fence);
        OrderingAudit?.Write(slots, byteOffset, byteOffset + bytes, fence.Generation);
    }

    public void Copy(DeviceBuffer source, long sourceByteOffset, DeviceBuffer destination, long destinationByteOffset, long bytes)
    {
        Bind();
        if (bytes > 0)
            Range(destination, destinationByteOffset, bytes).CopyFrom(_compute, Range(source, sourceByteOffset, bytes));
    }

    public void Synchronize()
    {
        Bind();
        _compute.Synchronize();
    }

    public void Embed(DeviceMatrix table, ReadOnlySpan<int> tokens, DeviceBuffer output)
    {
        Bind();
        foreach (int token in tokens)
            if ((uint)token >= (uint)table.Rows)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"Token id {token} is outside the vocabulary of {table.Rows}.");
        int dim = table.Cols;
        int chunk = Math.Max(1, _parameters.MaxElements<int>() / 2);
        for (int start = 0; start < tokens.Length; start += chunk)
        {
            int n = Math.Min(chunk, tokens.Length - start);
            var ids = _parameters.Upload(tokens.Slice(start, n));
            _kernels.Embed(_compute, Weights(table), ids, Floats(output).SubView((long)start * dim, (long)n * dim), n, dim);
        }
    }

    public void RmsNorm(DeviceBuffer input, DeviceMatrix weight, DeviceBuffer output, int rows, float epsilon) =>
        Bound()._kernels.RmsNorm(_compute, Floats(input), Weights(weight), Floats(output), rows, weight.Cols, epsilon);

    public void MatMul(DeviceBuffer input, int rows, DeviceMatrix weight, DeviceBuffer output) =>
        Bound()._kernels.Project(_compute, Floats(input), Weights(weight), Floats(output), rows, weight.Cols, weight.Rows);

    public void Rope(DeviceBuffer x, int rows, int heads, int headDim, ReadOnlySpan<int> positions, float theta)
    {
        Bind();
        var devicePositions = _parameters.Upload(positions[..rows]);
        _kernels.Rope(_compute, Floats(x), devicePositions, rows, heads, headDim, theta);
    }

    public void Attention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, int rows, int heads, KvCache cache, int layer, int sequence,
        ReadOnlySpan<int> positions, DeviceBuffer output)
    {
        Bind();
        var shape = cache.Shape;
        for (int r = 0; r < rows; r++)
            if ((uint)positions[r] >= (uint)shape.MaxSeqLen)
                throw new ArgumentOutOfRangeException(nameof(positions), $"Position {positions[r]} is past the KV cache's {shape.MaxSeqLen} positions.");
        int headDim = shape.HeadDim;
        long window = (long)shape.MaxSeqLen * shape.RowFloats;
        var cacheFloats = Floats(cache.Buffer);
        var keys = cacheFloats.SubView(shape.Index(layer, sequence, false, 0), window);
        var values = cacheFloats.SubView(shape.Index(layer, sequence, true, 0), window);
        var devicePositions = _parameters.Upload(positions[..rows]);
        _kernels.ScatterRows(_compute, keys, Floats(k), devicePositions, rows, shape.RowFloats);
        _kernels.ScatterRows(_compute, values, Floats(v), devicePositions, rows, shape.RowFloats);

        long queryRow = (long)heads * headDim;
        for (int start = 0; start < rows;)
        {
            int stride = positions[start] + 1;
            long need = (long)heads * stride;
            if (need > _scores.Length)
                throw new InsufficientDeviceMemoryException(
                    $"The ILGPU device scratch ({ByteSize.Format(_scratch.Bytes)}) cannot hold attention scores over {stride} positions; give the device more memory.",
                    Memory.UsedBytes + need * sizeof(float));
            int n = 1;
            while (start + n < rows)
            {
                int nextStride = Math.Max(stride, positions[start + n] + 1);
                if ((long)(n + 1) * heads * nextStride > _scores.Length)
                    break;
                stride = nextStride;
                n++;
            }
            _kernels.Attention(_compute, Floats(q).SubView(start * queryRow, n * queryRow), keys, values,
                Floats(output).SubView(start * queryRow, n * queryRow), devicePositions.SubView(start, n), _scores,
                n, heads, shape.KvHeads, headDim, stride);
            start += n;
        }
    }

    public void SiluMul(DeviceBuffer gate, DeviceBuffer up, int count) => Bound()._kernels.SiluMul(_compute, Floats(gate), Floats(up), count);

    public void Add(DeviceBuffer target, DeviceBuffer addend, int count) => Bound()._kernels.Add(_compute, Floats(target), Floats(addend), count);

    public void RouterTopK(DeviceBuffer logits, int rows, int experts, int topK, Span<int> indices, Span<float> weights)
    {
        Bind();
        if (rows * topK == 0)
            return;
        var deviceIndices = _parameters.Reserve<int>(rows * topK);
        var deviceWeights = _parameters.Reserve<float>(rows * topK);
        _kernels.RouteTopK(_compute, Floats(logits), deviceIndices, deviceWeights, rows, experts, topK);
        deviceIndices.CopyToCPU(_compute, indices[..(rows * topK)]);
        deviceWeights.CopyToCPU(_compute, weights[..(rows * topK)]);
    }

    public void ExpertForward(ExpertView expert, DeviceBuffer input, ReadOnlySpan<int> inputRows, DeviceBuffer output, ReadOnlySpan<int> outputRows,
        ExpertScratch scratch)
    {
        Bind();
        int hidden = expert.W1.Cols;
        int intermediate = expert.W1.Rows;
        int n = inputRows.Length;
        if (n > scratch.MaxRows)
            throw new ArgumentException($"{n} rows exceed the expert scratch of {scratch.MaxRows}.", nameof(inputRows));
        if (n == 0)
            return;
        if (OrderingAudit is { } audit)
        {
            long start = Math.Min(expert.W1.ByteOffset, Math.Min(expert.W3.ByteOffset, expert.W2.ByteOffset));
            long end = Math.Max(expert.W1.ByteOffset + expert.W1.Bytes, Math.Max(expert.W3.ByteOffset + expert.W3.Bytes, expert.W2.ByteOffset + expert.W2.Bytes));
            audit.Read(expert.W1.Buffer, start, end, _computeFences.LastRecorded);
        }
        var gathered = Floats(scratch.Gathered);
        var gate = Floats(scratch.Gate);
        var up = Floats(scratch.Up);
        var result = Floats(scratch.Output);
        _kernels.GatherRows(_compute, gathered, Floats(input), _parameters.Upload(inputRows), n, hidden);
        _kernels.Project(_compute, gathered, Weights(expert.W1), gate, n, hidden, intermediate);
        _kernels.Project(_compute, gathered, Weights(expert.W3), up, n, hidden, intermediate);
        _kernels.SiluMul(_compute, gate, up, n * intermediate);
        _kernels.Project(_compute, gate, Weights(expert.W2), result, n, intermediate, hidden);
        _kernels.ScatterRows(_compute, Floats(output), result, _parameters.Upload(outputRows), n, hidden);
    }

    public void MoeCombine(DeviceBuffer expertOutputs, ReadOnlySpan<float> weights, int rows, int topK, int hidden, DeviceBuffer target)
    {
        Bind();
        int chunk = Math.Max(1, _parameters.MaxElements<float>() / 2 / topK);
        for (int start = 0; start < rows; start += chunk)
        {
            int n = Math.Min(chunk, rows - start);
            var deviceWeights = _parameters.Upload(weights.Slice(start * topK, n * topK));
            _kernels.MoeCombine(_compute, Floats(expertOutputs).SubView((long)start * topK * hidden, (long)n * topK * hidden), deviceWeights,
                Floats(target).SubView((long)start * hidden, (long)n * hidden), n, topK, hidden);
        }
    }

    /// <summary>Host staging buffers registered (page-locked) with the driver right now.</summary>
    public int RegisteredStagingBuffers
    {
        get
        {
            lock (_copyGate)
                return _registered.Count;
        }
    }

    /// <summary>Unregisters a staging buffer that its owner is freeing, after the copies out of it have finished.</summary>
    private void Unregister(NativeBuffer native)
    {
        lock (_copyGate)
        {
            if (!_registered.Remove(native, out var pinned))
                return;
            Bind();
            _copies.WaitAll();
            pinned.Dispose();
        }
    }

    public void AddBias(DeviceBuffer x, int rows, DeviceMatrix bias) =>
        Bound()._familyKernels.AddBias(_compute, Floats(x), Weights(bias), rows, bias.Cols);

    public void Clamp(DeviceBuffer x, int count, float limit) => Bound()._familyKernels.Clamp(_compute, Floats(x), count, limit);

    public void CopyColumns(DeviceBuffer source, int sourceStride, int sourceOffset, DeviceBuffer destination, int destinationStride, int destinationOffset,
        int rows, int width) =>
        Bound()._familyKernels.CopyColumns(_compute, Floats(source), sourceStride, sourceOffset, Floats(destination), destinationStride, destinationOffset, rows, width);

    public void RopeInterleaved(DeviceBuffer x, int rows, int heads, int headStride, int offset, int ropeDim, ReadOnlySpan<int> positions, float theta)
    {
        Bind();
        long need = (long)rows * heads * ropeDim;
        if (need > _scores.Length)
            throw new InsufficientDeviceMemoryException(
                $"The ILGPU device scratch ({ByteSize.Format(_scratch.Bytes)}) cannot hold the rope parts of {rows} rows; give the device more memory.",
                Memory.UsedBytes + need * sizeof(float));
        var devicePositions = _parameters.Upload(positions[..rows]);
        _familyKernels.RopeInterleaved(_compute, Floats(x), _scores.SubView(0, need), devicePositions, rows, heads, headStride, offset, ropeDim, theta);
    }

    public void LatentAttention(DeviceBuffer q, DeviceBuffer latent, int rows, int heads, int nopeDim, int vDim, DeviceMatrix kvB, LatentKvCache cache,
        int layer, int sequence, ReadOnlySpan<int> positions, DeviceBuffer output)
    {
        Bind();
        var shape = cache.Shape;
        for (int r = 0; r < rows; r++)
            if ((uint)positions[r] >= (uint)shape.MaxSeqLen)
                throw new ArgumentOutOfRangeException(nameof(positions), $"Position {positions[r]} is past the KV cache's {shape.MaxSeqLen} positions.");
        int rank = shape.LatentDim;
        int rope = shape.RopeDim;
        var window = Floats(cache.Buffer).SubView(shape.Index(layer, sequence, 0), (long)shape.MaxSeqLen * shape.RowFloats);
        var devicePositions = _parameters.Upload(positions[..rows]);
        _kernels.ScatterRows(_compute, window, Floats(latent), devicePositions, rows, shape.RowFloats);
        long qRow = (long)heads * (nopeDim + rope);
        long oRow = (long)heads * vDim;
        for (int r = 0; r < rows; r++)
        {
            int length = positions[r] + 1;
            long need = (long)heads * (2L * rank + length);
            if (need > _scores.Length)
                throw new InsufficientDeviceMemoryException(
                    $"The ILGPU device scratch ({ByteSize.Format(_scratch.Bytes)}) cannot hold latent attention over {length} positions; give the device more memory.",
                    Memory.UsedBytes + need * sizeof(float));
            _familyKernels.LatentAttentionRow(_compute, _kernels, Floats(q).SubView(r * qRow, qRow), Weights(kvB), window, Floats(output).SubView(r * oRow, oRow),
                _scores.SubView(0, need), devicePositions.SubView(r, 1), heads, rank, nopeDim, rope, vDim, length, length);
        }
    }

    public void Dispose()
    {
        Bind();
        _compute.Synchronize();
        _copies.WaitAll();
        lock (_copyGate)
        {
            foreach (var (native, pinned) in _registered)
            {
                native.Freeing -= Unregister;
                pinned.Dispose();
            }
            _registered.Clear();
        }
        _parameters.Dispose();
        _computeFences.Dispose();
        _copies.Dispose();
        _kernels.Dispose();
        _compute.Dispose();
        _arena.Dispose();
        _gpu.Dispose();
    }

    /// <summary>
    /// Makes this accelerator's context current on the calling thread: the engine calls from whichever thread its
    /// awaits resume on, and fetches copy from thread-pool threads; CUDA contexts are per thread.
    /// </summary>
    private void Bind()
    {
        if (!ReferenceEquals(Accelerator.Current, _accelerator))
            _accelerator.Bind();
    }

    private IlgpuDevice Bound()
    {
        Bind();
        return this;
    }

    private IlgpuBuffer Own(DeviceBuffer buffer) =>
        buffer is IlgpuBuffer own && own.Owner == this
            ? own
            : throw new ArgumentException($"Buffer '{buffer.Purpose}' does not belong to the {Name} device.", nameof(buffer));

    private ArrayView<float> Floats(DeviceBuffer buffer) => Own(buffer).Floats;

    private WeightView Weights(DeviceMatrix matrix) =>
        WeightView.Of(Range(matrix.Buffer, matrix.ByteOffset, matrix.Bytes), matrix.Type);

    private ArrayView<byte> Range(DeviceBuffer buffer, long offset, long length)
    {
        var own = Own(buffer);
        if (offset < 0 || length < 0 || offset + length > own.Bytes)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{length} bytes at offset {offset} run past '{buffer.Purpose}' ({buffer.Bytes} bytes).");
        return own.View.SubView(offset, Math.Max(length, 0));
    }
}
