using Fabric.Engine.Device;
using Fabric.Model;

namespace Fabric.Engine.Runtime.Families;

/// <summary>
/// Grouped-query attention with the per-family steps of Hugging Face's <c>modeling_*.py</c>: q/k/v projections
/// (+ biases for Qwen2-MoE), q/k RMSNorm per head before RoPE (Qwen3-MoE) or over the whole projection width
/// (OLMoE), clamping of q, k and v to ±<c>clip_qkv</c> after the norms (OLMoE), rotate-half RoPE, causal attention
/// over the KV cache, o_proj.
/// </summary>
public sealed class GqaAttention : AttentionBlock
{
    private readonly IComputeDevice _device;
    private readonly ModelConfig _c;
    private readonly Layer[] _layers;
    private readonly KvCache _kv;
    private readonly DeviceBuffer _q, _k, _v, _attn;
    private readonly DeviceBuffer _segmentQ, _segmentK, _segmentV, _segmentAttn;
    private readonly (DeviceBuffer, DeviceBuffer, int)[] _inputs;
    private readonly SequenceAttention _attend;
    private readonly int _qDim, _kvDim;

    internal GqaAttention(ModelConfig c, EngineOptions o, IComputeDevice device, DenseWeights dense, Func<long, string, DeviceBuffer> allocate)
    {
        _device = device;
        _c = c;
        var chunk = Math.Max(1, o.PrefillChunk);
        _qDim = c.NumAttentionHeads * c.HeadDim;
        _kvDim = c.NumKeyValueHeads * c.HeadDim;
        var shape = new KvCacheShape(c.NumHiddenLayers, c.NumKeyValueHeads, c.HeadDim, o.MaxSeqLen, o.MaxBatch);
        _kv = new KvCache(allocate(shape.Bytes, "KV cache"), shape);
        _q = allocate((long)chunk * _qDim * sizeof(float), "queries");
        _k = allocate((long)chunk * _kvDim * sizeof(float), "keys");
        _v = allocate((long)chunk * _kvDim * sizeof(float), "values");
        _attn = allocate((long)chunk * _qDim * sizeof(float), "attention output");
        _segmentQ = allocate((long)chunk * _qDim * sizeof(float), "one sequence's queries");
        _segmentK = allocate((long)chunk * _kvDim * sizeof(float), "one sequence's keys");
        _segmentV = allocate((long)chunk * _kvDim * sizeof(float), "one sequence's values");
        _segmentAttn = allocate((long)chunk * _qDim * sizeof(float), "one sequence's attention output");
        _inputs = [(_q, _segmentQ, _qDim), (_k, _segmentK, _kvDim), (_v, _segmentV, _kvDim)];
        _attend = AttendOne;
        _layers = new Layer[c.NumHiddenLayers];
        for (var l = 0; l < c.NumHiddenLayers; l++)
        {
            var p = $"model.layers.{l}.self_attn.";
            _layers[l] = new Layer(
                dense[p + "q_proj.weight"], dense[p + "k_proj.weight"], dense[p + "v_proj.weight"], dense[p + "o_proj.weight"],
                c.QkvBias ? dense[p + "q_proj.bias"] : null, c.QkvBias ? dense[p + "k_proj.bias"] : null, c.QkvBias ? dense[p + "v_proj.bias"] : null,
                c.QkNorm != QkNormKind.None ? dense[p + "q_norm.weight"] : null, c.QkNorm != QkNormKind.None ? dense[p + "k_norm.weight"] : null);
        }
    }

    /// <summary>Queries, keys, values and attention output per row, twice: the batch's rows and one sequence's (batched attention).</summary>
    internal static new long ScratchFloatsPerRow(ModelConfig c) => (4L * c.NumAttentionHeads * c.HeadDim) + (4L * c.NumKeyValueHeads * c.HeadDim);

    public override void Forward(DeviceBuffer x, int rows, int layer, ReadOnlySpan<BatchSegment> segments, ReadOnlySpan<int> positions, DeviceBuffer output)
    {
        var c = _c;
        var w = _layers[layer];
        var eps = (float)c.RmsNormEps;
        _device.MatMul(x, rows, w.Q, _q);
        _device.MatMul(x, rows, w.K, _k);
        _device.MatMul(x, rows, w.V, _v);
        if (w.QBias is { } qb)
        {
            _device.AddBias(_q, rows, qb);
            _device.AddBias(_k, rows, w.KBias!.Value);
            _device.AddBias(_v, rows, w.VBias!.Value);
        }
        switch (c.QkNorm)
        {
            case QkNormKind.PerHead:
                // The norm weight is [head_dim]: every head of every row is one norm row.
                _device.RmsNorm(_q, w.QNorm!.Value, _q, rows * c.NumAttentionHeads, eps);
                _device.RmsNorm(_k, w.KNorm!.Value, _k, rows * c.NumKeyValueHeads, eps);
                break;
            case QkNormKind.FullWidth:
                _device.RmsNorm(_q, w.QNorm!.Value, _q, rows, eps);
                _device.RmsNorm(_k, w.KNorm!.Value, _k, rows, eps);
                break;
        }
        if (c.ClipQkv > 0)
        {
            var limit = (float)c.ClipQkv;
            _device.Clamp(_q, rows * _qDim, limit);
            _device.Clamp(_k, rows * _kvDim, limit);
            _device.Clamp(_v, rows * _kvDim, limit);
        }
        var theta = (float)c.RopeTheta;
        _device.Rope(_q, rows, c.NumAttentionHeads, c.HeadDim, positions, theta);
        _device.Rope(_k, rows, c.NumKeyValueHeads, c.HeadDim, positions, theta);
        PerSequence(_device, segments, positions, layer, _inputs, (_attn, _segmentAttn, _qDim), _attend);
        _device.MatMul(_attn, rows, w.O, output);
    }

    private void AttendOne(bool onSegmentBuffers, int rows, int layer, int sequence, ReadOnlySpan<int> positions)
    {
        if (onSegmentBuffers)
            _device.Attention(_segmentQ, _segmentK, _segmentV, rows, _c.NumAttentionHeads, _kv, layer, sequence, positions, _segmentAttn);
        else
            _device.Attention(_q, _k, _v, rows, _c.NumAttentionHeads, _kv, layer, sequence, positions, _attn);
    }

    private sealed record Layer(DeviceMatrix Q, DeviceMatrix K, DeviceMatrix V, DeviceMatrix O, DeviceMatrix? QBias, DeviceMatrix? KBias, DeviceMatrix? VBias,
        DeviceMatrix? QNorm, DeviceMatrix? KNorm);
}
