using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Model;

namespace Fabric.Engine.Runtime;

/// <summary>
/// How the device budget is split: dense weights and the KV cache first (never shrunk), then activation and expert
/// scratch, and whatever is left becomes expert slots. All figures in bytes.
/// </summary>
public sealed record MemoryPlan(long DenseBytes, long KvCacheBytes, long ScratchBytes, long SlotBytes, int Slots, long BudgetBytes)
{
    /// <summary>Bytes reserved before any slot.</summary>
    public long FixedBytes => DenseBytes + KvCacheBytes + ScratchBytes;

    /// <summary>The smallest budget that runs the model: fixed bytes plus top-k slots (one layer's experts for one token).</summary>
    public static long MinimumBytes(ModelConfig config, long denseBytes, ExpertSlotLayout layout, EngineOptions options) =>
        FixedFor(config, denseBytes, options) + (config.NumExpertsPerTok * layout.SlotBytes);

    /// <summary>The budget that holds exactly <paramref name="slots"/> slots.</summary>
    public static long BytesForSlots(ModelConfig config, long denseBytes, ExpertSlotLayout layout, EngineOptions options, int slots) =>
        FixedFor(config, denseBytes, options) + (slots * layout.SlotBytes);

    /// <summary>Splits <paramref name="budgetBytes"/>; too little for top-k slots throws <see cref="InsufficientDeviceMemoryException"/> saying how much is needed.</summary>
    public static MemoryPlan Create(ModelConfig config, long denseBytes, ExpertSlotLayout layout, EngineOptions options, long budgetBytes)
    {
        var kv = KvShape(config, options).Bytes;
        var scratch = ScratchFor(config, options);
        var fixedBytes = denseBytes + kv + scratch;
        var left = budgetBytes - fixedBytes;
        var slots = left <= 0 ? 0 : (int)Math.Min(left / layout.SlotBytes, config.TotalExperts);
        if (options.MaxSlots > 0)
            slots = Math.Min(slots, options.MaxSlots);
        if (slots < config.NumExpertsPerTok)
        {
            var needed = fixedBytes + (config.NumExpertsPerTok * layout.SlotBytes);
            throw new InsufficientDeviceMemoryException(
                $"The device memory budget of {ByteSize.Format(budgetBytes)} is too small: dense weights {ByteSize.Format(denseBytes)}, KV cache {ByteSize.Format(kv)} " +
                $"({options.MaxSeqLen} positions × {options.MaxBatch} sequences) and scratch {ByteSize.Format(scratch)} leave room for {Math.Max(0, slots)} expert slots " +
                $"of {ByteSize.Format(layout.SlotBytes)}, and at least {config.NumExpertsPerTok} (top-k) are needed: give at least {ByteSize.Format(needed)} ({needed} bytes).",
                needed);
        }
        return new MemoryPlan(denseBytes, kv, scratch, layout.SlotBytes, slots, budgetBytes);
    }

    /// <summary>Keys and values of one position over every layer, fp32: layers × 2 × KV heads × head dim × 4 bytes.</summary>
    public static long KvBytesPerPosition(ModelConfig c) => 2L * c.NumHiddenLayers * c.NumKeyValueHeads * c.HeadDim * sizeof(float);

    /// <summary>
    /// Throws <see cref="KvCacheTooLargeException"/> when the KV cache for <see cref="EngineOptions.MaxSeqLen"/> ×
    /// <see cref="EngineOptions.MaxBatch"/> needs more than <paramref name="limitBytes"/>; call it before anything is allocated.
    /// </summary>
    public static void EnsureKvCacheFits(ModelConfig config, EngineOptions options, long limitBytes)
    {
        var positions = (long)options.MaxSeqLen * options.MaxBatch;
        var perPosition = KvBytesPerPosition(config);
        if ((double)positions * perPosition > limitBytes)
            throw new KvCacheTooLargeException(positions, perPosition, limitBytes);
    }

    internal static KvCacheShape KvShape(ModelConfig c, EngineOptions o) =>
        new(c.NumHiddenLayers, c.NumKeyValueHeads, c.HeadDim, o.MaxSeqLen, o.MaxBatch);

    /// <summary>Activation buffers for one prefill chunk plus the expert scratch, fp32.</summary>
    internal static long ScratchFor(ModelConfig c, EngineOptions o)
    {
        long rows = Math.Max(1, o.PrefillChunk);
        var q = (long)c.NumAttentionHeads * c.HeadDim;
        var kv = (long)c.NumKeyValueHeads * c.HeadDim;
        // q, k, v and attention output twice: the batch's rows and one sequence's rows (batched attention).
        var perRow = (3L * c.HiddenSize) + (4 * q) + (4 * kv) + (2L * c.NumLocalExperts) + ((long)c.NumExpertsPerTok * c.HiddenSize);
        var expert = rows * ((2L * c.HiddenSize) + (2L * c.IntermediateSize));
        return ((rows * perRow) + expert + c.VocabSize) * sizeof(float);
    }

    private static long FixedFor(ModelConfig c, long denseBytes, EngineOptions o) => denseBytes + KvShape(c, o).Bytes + ScratchFor(c, o);
}
