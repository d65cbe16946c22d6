using Fabric.Engine.Device;
using Fabric.Model;

namespace Fabric.Engine.Runtime.Families;

/// <summary>
/// DeepSeek-V2's multi-head latent attention (<c>DeepseekV2Attention</c>): queries through q_proj, or q_a_proj →
/// q_a_layernorm → q_b_proj when <c>q_lora_rank</c> is set; kv_a_proj_with_mqa gives the KV latent (normalised by
/// kv_a_layernorm) and one rope key shared by all heads; RoPE in DeepSeek's interleaved layout on the rope parts only;
/// the <see cref="LatentKvCache"/> holds latent + rope key per position (not per head), and kv_b_proj expands it into
/// each head's keys and values inside <see cref="IComputeDevice.LatentAttention"/>.
/// </summary>
public sealed class LatentAttentionBlock : AttentionBlock
{
    private readonly IComputeDevice _device;
    private readonly ModelConfig _c;
    private readonly Layer[] _layers;
    private readonly LatentKvCache _cache;
    private readonly DeviceBuffer _q, _qa, _kv, _latent, _attn;
    private readonly DeviceBuffer _segmentQ, _segmentKv, _segmentAttn;
    private readonly (DeviceBuffer, DeviceBuffer, int)[] _inputs;
    private readonly SequenceAttention _attend;
    private readonly int _qRow, _kvRow, _attnRow;

    internal LatentAttentionBlock(ModelConfig c, EngineOptions o, IComputeDevice device, DenseWeights dense, Func<long, string, DeviceBuffer> allocate)
    {
        _device = device;
        _c = c;
        var chunk = (long)Math.Max(1, o.PrefillChunk);
        var shape = new LatentKvCacheShape(c.NumHiddenLayers, c.KvLoraRank, c.QkRopeHeadDim, o.MaxSeqLen, o.MaxBatch);
        _cache = new LatentKvCache(allocate(shape.Bytes, "latent KV cache"), shape);
        _q = allocate(chunk * c.NumAttentionHeads * c.QkHeadDim * sizeof(float), "queries");
        _qa = allocate(chunk * Math.Max(1, c.QLoraRank) * sizeof(float), "query latent");
        _kv = allocate(chunk * (c.KvLoraRank + c.QkRopeHeadDim) * sizeof(float), "KV latent and rope key");
        _latent = allocate(chunk * c.KvLoraRank * sizeof(float), "KV latent");
        _attn = allocate(chunk * c.NumAttentionHeads * c.VHeadDim * sizeof(float), "attention output");
        _qRow = c.NumAttentionHeads * c.QkHeadDim;
        _kvRow = c.KvLoraRank + c.QkRopeHeadDim;
        _attnRow = c.NumAttentionHeads * c.VHeadDim;
        _segmentQ = allocate(chunk * _qRow * sizeof(float), "one sequence's queries");
        _segmentKv = allocate(chunk * _kvRow * sizeof(float), "one sequence's KV latent and rope key");
        _segmentAttn = allocate(chunk * _attnRow * sizeof(float), "one sequence's attention output");
        _inputs = [(_q, _segmentQ, _qRow), (_kv, _segmentKv, _kvRow)];
        _attend = AttendOne;
        _layers = new Layer[c.NumHiddenLayers];
        for (var l = 0; l < c.NumHiddenLayers; l++)
        {
            var p = $"model.layers.{l}.self_attn.";
            var lora = c.QLoraRank > 0;
            _layers[l] = new Layer(
                lora ? null : dense[p + "q_proj.weight"],
                lora ? dense[p + "q_a_proj.weight"] : null,
                lora ? dense[p + "q_a_layernorm.weight"] : null,
                lora ? dense[p + "q_b_proj.weight"] : null,
                dense[p + "kv_a_proj_with_mqa.weight"], dense[p + "kv_a_layernorm.weight"], dense[p + "kv_b_proj.weight"], dense[p + "o_proj.weight"]);
        }
    }

    /// <summary>Queries, query latent, KV latent (twice) and attention output per row, with one sequence's queries, KV latent and output again (batched attention).</summary>
    internal static new long ScratchFloatsPerRow(ModelConfig c) =>
        (2L * c.NumAttentionHeads * c.QkHeadDim) + Math.Max(1, c.QLoraRank) + (3L * c.KvLoraRank) + (2L * c.QkRopeHeadDim) + (2L * c.NumAttentionHeads * c.VHeadDim);

    public override void Forward(DeviceBuffer x, int rows, int layer, ReadOnlySpan<BatchSegment> segments, ReadOnlySpan<int> positions, DeviceBuffer output)
    {
        var c = _c;
        var w = _layers[layer];
        var eps = (float)c.RmsNormEps;
        var theta = (float)c.RopeTheta;
        var rank = c.KvLoraRank;
        var kvWidth = rank + c.QkRopeHeadDim;
        if (w.QProj is { } qProj)
        {
            _device.MatMul(x, rows, qProj, _q);
        }
        else
        {
            _device.MatMul(x, rows, w.QA!.Value, _qa);
            _device.RmsNorm(_qa, w.QANorm!.Value, _qa, rows, eps);
            _device.MatMul(_qa, rows, w.QB!.Value, _q);
        }
        _device.RopeInterleaved(_q, rows, c.NumAttentionHeads, c.QkHeadDim, c.QkNopeHeadDim, c.QkRopeHeadDim, positions, theta);

        _device.MatMul(x, rows, w.KvA, _kv);
        // kv_a_layernorm covers the latent only, not the rope key packed after it.
        _device.CopyColumns(_kv, kvWidth, 0, _latent, rank, 0, rows, rank);
        _device.RmsNorm(_latent, w.KvANorm, _latent, rows, eps);
        _device.CopyColumns(_latent, rank, 0, _kv, kvWidth, 0, rows, rank);
        _device.RopeInterleaved(_kv, rows, 1, kvWidth, rank, c.QkRopeHeadDim, positions, theta);

        PerSequence(_device, segments, positions, layer, _inputs, (_attn, _segmentAttn, _attnRow), _attend);
        _device.MatMul(_attn, rows, w.O, output);
    }

    private void AttendOne(bool onSegmentBuffers, int rows, int layer, int sequence, ReadOnlySpan<int> positions)
    {
        var c = _c;
        var kvB = _layers[layer].KvB;
        if (onSegmentBuffers)
            _device.LatentAttention(_segmentQ, _segmentKv, rows, c.NumAttentionHeads, c.QkNopeHeadDim, c.VHeadDim, kvB, _cache, layer, sequence, positions, _segmentAttn);
        else
            _device.LatentAttention(_q, _kv, rows, c.NumAttentionHeads, c.QkNopeHeadDim, c.VHeadDim, kvB, _cache, layer, sequence, positions, _attn);
    }

    private sealed record Layer(DeviceMatrix? QProj, DeviceMatrix? QA, DeviceMatrix? QANorm, DeviceMatrix? QB, DeviceMatrix KvA, DeviceMatrix KvANorm,
        DeviceMatrix KvB, DeviceMatrix O);
}
