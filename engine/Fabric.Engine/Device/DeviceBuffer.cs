namespace Fabric.Engine.Device;

/// <summary>
/// One allocation in device memory, counted against the device's <see cref="DeviceMemoryBudget"/>. Owned by whoever
/// asked the device for it; <c>Dispose()</c> frees it and returns its bytes to the budget.
/// </summary>
public abstract class DeviceBuffer : IDisposable
{
    protected DeviceBuffer(long bytes, string purpose)
    {
        Bytes = bytes;
        Purpose = purpose;
    }

    /// <summary>Size in bytes.</summary>
    public long Bytes { get; }

    /// <summary>What the buffer holds, for error messages ("dense weights", "KV cache", "expert slots").</summary>
    public string Purpose { get; }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected abstract void Dispose(bool disposing);
}

/// <summary>
/// A row-major weight matrix [<see cref="Rows"/>, <see cref="Cols"/>] of <see cref="Type"/> stored in a device buffer at
/// <see cref="ByteOffset"/> bytes. Linear layers use the Hugging Face layout [out_features, in_features]; a norm
/// weight is a 1 × dim matrix; the embedding table is [vocab, hidden].
/// </summary>
public readonly record struct DeviceMatrix(DeviceBuffer Buffer, long ByteOffset, WeightType Type, int Rows, int Cols)
{
    /// <summary>Size in bytes.</summary>
    public long Bytes => (long)Rows * Cols * Type.Size();
}

/// <summary>One expert's three matrices: gate w1 [I, H], up w3 [I, H], down w2 [H, I].</summary>
public readonly record struct ExpertView(DeviceMatrix W1, DeviceMatrix W3, DeviceMatrix W2);

/// <summary>
/// How one expert is laid out in a slot: exactly the bytes the pool packs for it (gate, up, down, each at its offset
/// within the expert's packed block), so a fetched block is copied into a slot without reshuffling.
/// </summary>
/// <remarks>SlotBytes: bytes per slot (the packed expert block, rounded up to 4 KiB). Offsets are bytes from the slot's start.</remarks>
public sealed record ExpertSlotLayout(long SlotBytes, WeightType Type, int Hidden, int Intermediate, long W1Offset, long W3Offset, long W2Offset)
{
    /// <summary>The packed layout the pool uses: w1, w3, w2 back to back, each aligned to <paramref name="alignment"/> bytes.</summary>
    public static ExpertSlotLayout Packed(WeightType type, int hidden, int intermediate, int alignment = 4096)
    {
        var matrix = (long)hidden * intermediate * type.Size();
        var aligned = AlignUp(matrix, alignment);
        return new ExpertSlotLayout(AlignUp(3 * aligned, alignment), type, hidden, intermediate, 0, aligned, 2 * aligned);
    }

    /// <summary>The matrices of slot <paramref name="slot"/> in the slot buffer <paramref name="slots"/>.</summary>
    public ExpertView View(DeviceBuffer slots, int slot)
    {
        var start = slot * SlotBytes;
        return new ExpertView(
            new DeviceMatrix(slots, start + W1Offset, Type, Intermediate, Hidden),
            new DeviceMatrix(slots, start + W3Offset, Type, Intermediate, Hidden),
            new DeviceMatrix(slots, start + W2Offset, Type, Hidden, Intermediate));
    }

    public static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;
}

/// <summary>
/// The shape of the KV cache: fp32, laid out [layer][sequence][k|v][position][kvHead][headDim]. Reserved once for
/// <see cref="MaxSeqLen"/> × <see cref="MaxBatch"/> and never shrunk for experts.
/// </summary>
public sealed record KvCacheShape(int Layers, int KvHeads, int HeadDim, int MaxSeqLen, int MaxBatch)
{
    /// <summary>Floats per (layer, sequence, k or v, position).</summary>
    public int RowFloats => KvHeads * HeadDim;

    /// <summary>Total size in bytes.</summary>
    public long Bytes => 2L * Layers * MaxBatch * MaxSeqLen * RowFloats * sizeof(float);

    /// <summary>Float index of the K (or V when <paramref name="value"/>) row of a position.</summary>
    public long Index(int layer, int sequence, bool value, int position) =>
        (((((long)layer * MaxBatch) + sequence) * 2 + (value ? 1 : 0)) * MaxSeqLen + position) * RowFloats;
}

/// <summary>The KV cache: a device buffer of <see cref="KvCacheShape.Bytes"/> bytes, owned by the engine.</summary>
public sealed record KvCache(DeviceBuffer Buffer, KvCacheShape Shape);

/// <summary>
/// Scratch the expert FFN uses, sized for <see cref="MaxRows"/> token rows: gathered input [rows, H], gate and up
/// [rows, I], expert output [rows, H], all fp32. Owned by the engine, allocated from the device budget once.
/// </summary>
public sealed record ExpertScratch(int MaxRows, DeviceBuffer Gathered, DeviceBuffer Gate, DeviceBuffer Up, DeviceBuffer Output);

/// <summary>
/// The shape of multi-head latent attention's cache (DeepSeek-V2): fp32, laid out [layer][sequence][position] rows of
/// <see cref="LatentDim"/> latent floats then <see cref="RopeDim"/> rope-key floats — what the model needs to rebuild
/// every head's keys and values, instead of the keys and values themselves.
/// </summary>
public sealed record LatentKvCacheShape(int Layers, int LatentDim, int RopeDim, int MaxSeqLen, int MaxBatch)
{
    /// <summary>Floats per (layer, sequence, position).</summary>
    public int RowFloats => LatentDim + RopeDim;

    /// <summary>Total size in bytes.</summary>
    public long Bytes => (long)Layers * MaxBatch * MaxSeqLen * RowFloats * sizeof(float);

    /// <summary>Float index of the row of a position.</summary>
    public long Index(int layer, int sequence, int position) => ((((long)layer * MaxBatch) + sequence) * MaxSeqLen + position) * RowFloats;
}

/// <summary>The latent KV cache: a device buffer of <see cref="LatentKvCacheShape.Bytes"/> bytes, owned by the engine.</summary>
public sealed record LatentKvCache(DeviceBuffer Buffer, LatentKvCacheShape Shape);
