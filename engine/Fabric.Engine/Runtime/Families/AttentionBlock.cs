using Fabric.Engine.Device;
using Fabric.Model;

namespace Fabric.Engine.Runtime.Families;

/// <summary>
/// One family's self-attention, from the normalised hidden state to the output projection, over the KV cache it owns.
/// <see cref="GqaAttention"/> covers Mixtral, Qwen2-MoE (q/k/v biases), Qwen3-MoE (per-head q/k norms) and OLMoE
/// (full-width q/k norms, <c>clip_qkv</c>); <see cref="LatentAttentionBlock"/> is DeepSeek-V2's multi-head latent attention.
/// </summary>
public abstract class AttentionBlock
{
    /// <summary>
    /// Attention of <paramref name="rows"/> token rows of <paramref name="x"/> ([rows, hidden], normalised) at
    /// <paramref name="positions"/> of <paramref name="sequence"/> in model layer <paramref name="layer"/>; writes the
    /// o_proj output [rows, hidden] into <paramref name="output"/> (the caller adds it to the residual stream).
    /// </summary>
    public abstract void Forward(DeviceBuffer x, int rows, int layer, int sequence, ReadOnlySpan<int> positions, DeviceBuffer output);

    /// <summary>Bytes of the KV cache for <paramref name="o"/>'s positions and sequences, fp32.</summary>
    public static long KvCacheBytes(ModelConfig c, EngineOptions o) =>
        (long)c.NumHiddenLayers * c.KvFloatsPerLayerPosition * o.MaxSeqLen * o.MaxBatch * sizeof(float);

    /// <summary>Scratch floats the block needs per token row of a prefill chunk.</summary>
    public static long ScratchFloatsPerRow(ModelConfig c) => c.UsesLatentAttention
        ? LatentAttentionBlock.ScratchFloatsPerRow(c)
        : GqaAttention.ScratchFloatsPerRow(c);

    /// <summary>
    /// The block of <paramref name="c"/>'s family over <paramref name="dense"/>, with its cache and scratch taken from
    /// <paramref name="allocate"/> (bytes, purpose; counted in the device budget and owned by the caller).
    /// </summary>
    public static AttentionBlock Create(ModelConfig c, EngineOptions o, IComputeDevice device, DenseWeights dense, Func<long, string, DeviceBuffer> allocate) =>
        c.UsesLatentAttention
            ? new LatentAttentionBlock(c, o, device, dense, allocate)
            : new GqaAttention(c, o, device, dense, allocate);
}
