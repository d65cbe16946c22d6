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
    /// <paramref name="positions"/> in model layer <paramref name="layer"/>; the rows belong to the sequences of
    /// <paramref name="segments"/> in order (one segment for a single sequence). Projections run over all rows at once;
    /// attention runs per sequence over its own KV cache lane. Writes the o_proj output [rows, hidden] into
    /// <paramref name="output"/> (the caller adds it to the residual stream).
    /// </summary>
    public abstract void Forward(DeviceBuffer x, int rows, int layer, ReadOnlySpan<BatchSegment> segments, ReadOnlySpan<int> positions, DeviceBuffer output);

    /// <summary>
    /// Runs <paramref name="attend"/> once per segment so that the device op sees one sequence at a time: the first segment
    /// on the batch buffers in place, each later one on the segment buffers (its input rows copied to row 0, its output
    /// rows copied back). Each of <paramref name="inputs"/> pairs a batch buffer with its segment buffer and their row width
    /// in floats; likewise <paramref name="output"/>.
    /// </summary>
    private protected void PerSequence(IComputeDevice device, ReadOnlySpan<BatchSegment> segments, ReadOnlySpan<int> positions, int layer,
        ReadOnlySpan<(DeviceBuffer Batch, DeviceBuffer Segment, int RowFloats)> inputs, (DeviceBuffer Batch, DeviceBuffer Segment, int RowFloats) output,
        SequenceAttention attend)
    {
        var row = 0;
        foreach (var s in segments)
        {
            var at = positions.Slice(row, s.Tokens);
            if (row == 0)
            {
                attend(false, s.Tokens, layer, s.Sequence, at);
            }
            else
            {
                foreach (var (batch, segment, width) in inputs)
                    device.Copy(batch, (long)row * width * sizeof(float), segment, 0, (long)s.Tokens * width * sizeof(float));
                attend(true, s.Tokens, layer, s.Sequence, at);
                device.Copy(output.Segment, 0, output.Batch, (long)row * output.RowFloats * sizeof(float), (long)s.Tokens * output.RowFloats * sizeof(float));
            }
            row += s.Tokens;
        }
    }

    /// <summary>One sequence's attention: on the segment buffers when <paramref name="onSegmentBuffers"/>, else on the batch buffers.</summary>
    private protected delegate void SequenceAttention(bool onSegmentBuffers, int rows, int layer, int sequence, ReadOnlySpan<int> positions);

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
