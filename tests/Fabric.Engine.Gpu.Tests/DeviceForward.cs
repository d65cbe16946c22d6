using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Paging;
using Fabric.Engine.Sources;
using Fabric.Model;

namespace Fabric.Engine.Gpu.Tests;

/// <summary>
/// The Mixtral forward pass written against <see cref="IComputeDevice"/> alone, all experts resident: the same
/// sequence of device ops runs on the CPU device and on the ILGPU device, so their logits can be compared.
/// Experts travel the real fetch path: source → pinned staging → <see cref="IComputeDevice.CopyToSlotAsync"/>.
/// </summary>
internal sealed class DeviceForward : IDisposable
{
    private readonly IComputeDevice _device;
    private readonly ModelConfig _config;
    private readonly Dictionary<string, DeviceMatrix> _dense = new(StringComparer.Ordinal);
    private readonly List<DeviceBuffer> _owned = [];
    private readonly DeviceBuffer _slots;
    private readonly ExpertSlotLayout _layout;
    private readonly KvCache _cache;
    private readonly ExpertScratch _scratch;
    private readonly DeviceBuffer _h, _x, _q, _k, _v, _attention, _projected, _routerLogits, _expertOutputs, _logits;
    private readonly int _maxRows;

    private DeviceForward(IComputeDevice device, ModelConfig config, ExpertSlotLayout layout, int maxRows, int maxSeqLen)
    {
        _device = device;
        _config = config;
        _layout = layout;
        _maxRows = maxRows;
        int hidden = config.HiddenSize, qWidth = config.NumAttentionHeads * config.HeadDim, kvWidth = config.NumKeyValueHeads * config.HeadDim;
        var shape = new KvCacheShape(config.NumHiddenLayers, config.NumKeyValueHeads, config.HeadDim, maxSeqLen, 1);
        _cache = new KvCache(Own(shape.Bytes, "KV cache"), shape);
        _h = Floats(maxRows * hidden, "hidden");
        _x = Floats(maxRows * hidden, "normed");
        _q = Floats(maxRows * qWidth, "q");
        _k = Floats(maxRows * kvWidth, "k");
        _v = Floats(maxRows * kvWidth, "v");
        _attention = Floats(maxRows * qWidth, "attention");
        _projected = Floats(maxRows * hidden, "o_proj");
        _routerLogits = Floats(maxRows * config.NumLocalExperts, "router logits");
        _expertOutputs = Floats(maxRows * config.NumExpertsPerTok * hidden, "expert outputs");
        _logits = Floats(maxRows * config.VocabSize, "logits");
        _scratch = new ExpertScratch(maxRows, Floats(maxRows * hidden, "expert gathered"), Floats(maxRows * config.IntermediateSize, "expert gate"),
            Floats(maxRows * config.IntermediateSize, "expert up"), Floats(maxRows * hidden, "expert output"));
        _slots = Own(config.TotalExperts * layout.SlotBytes, "expert slots");
    }

    public static async Task<DeviceForward> LoadAsync(IComputeDevice device, CheckpointSource source, int maxRows, int maxSeqLen)
    {
        var forward = new DeviceForward(device, source.Config, source.ExpertLayout, maxRows, maxSeqLen);
        foreach (var (name, info) in source.DenseTensors)
        {
            var bytes = new byte[info.Bytes];
            await source.ReadDenseAsync(name, bytes, CancellationToken.None);
            var buffer = forward.Own(info.Bytes, name);
            device.Upload(buffer, 0, bytes);
            int rows = (int)info.Shape[0], cols = info.Shape.Length > 1 ? (int)info.Shape[1] : rows;
            if (info.Shape.Length == 1)
                rows = 1;
            forward._dense[name] = new DeviceMatrix(buffer, 0, WeightTypes.Parse(info.Dtype.SafetensorsName()), rows, cols);
        }
        using var staging = new NativeBuffer(source.ExpertLayout.SlotBytes);
        var config = source.Config;
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
            for (int expert = 0; expert < config.NumLocalExperts; expert++)
            {
                await source.FetchExpertAsync(new ExpertKey(layer, expert), staging.Memory, CancellationToken.None);
                await device.CopyToSlotAsync(forward._slots, forward.SlotIndex(layer, expert) * source.ExpertLayout.SlotBytes, staging.Memory);
            }
        return forward;
    }

    /// <summary>Runs tokens at positions through the model; returns the logits of every row [rows, vocab].</summary>
    public float[] Step(int[] tokens, int[] positions)
    {
        var c = _config;
        int rows = tokens.Length, hidden = c.HiddenSize, topK = c.NumExpertsPerTok;
        float eps = (float)c.RmsNormEps;
        _device.Embed(_dense["model.embed_tokens.weight"], tokens, _h);
        var indices = new int[rows * topK];
        var weights = new float[rows * topK];
        for (int layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            string p = $"model.layers.{layer}.";
            _device.RmsNorm(_h, _dense[p + "input_layernorm.weight"], _x, rows, eps);
            _device.MatMul(_x, rows, _dense[p + "self_attn.q_proj.weight"], _q);
            _device.MatMul(_x, rows, _dense[p + "self_attn.k_proj.weight"], _k);
            _device.MatMul(_x, rows, _dense[p + "self_attn.v_proj.weight"], _v);
            _device.Rope(_q, rows, c.NumAttentionHeads, c.HeadDim, positions, (float)c.RopeTheta);
            _device.Rope(_k, rows, c.NumKeyValueHeads, c.HeadDim, positions, (float)c.RopeTheta);
            _device.Attention(_q, _k, _v, rows, c.NumAttentionHeads, _cache, layer, 0, positions, _attention);
            _device.MatMul(_attention, rows, _dense[p + "self_attn.o_proj.weight"], _projected);
            _device.Add(_h, _projected, rows * hidden);
            _device.RmsNorm(_h, _dense[p + "post_attention_layernorm.weight"], _x, rows, eps);
            _device.MatMul(_x, rows, _dense[TensorNames.Router(c.Architecture, layer)], _routerLogits);
            _device.RouterTopK(_routerLogits, rows, c.NumLocalExperts, topK, indices, weights);
            for (int expert = 0; expert < c.NumLocalExperts; expert++)
            {
                var inputRows = new List<int>();
                var outputRows = new List<int>();
                for (int i = 0; i < indices.Length; i++)
                    if (indices[i] == expert)
                    {
                        inputRows.Add(i / topK);
                        outputRows.Add(i);
                    }
                if (inputRows.Count > 0)
                    _device.ExpertForward(_layout.View(_slots, SlotIndex(layer, expert)), _x, inputRows.ToArray(), _expertOutputs, outputRows.ToArray(), _scratch);
            }
            _device.MoeCombine(_expertOutputs, weights, rows, topK, hidden, _h);
        }
        _device.RmsNorm(_h, _dense["model.norm.weight"], _x, rows, eps);
        _device.MatMul(_x, rows, _dense["lm_head.weight"], _logits);
        var logits = new float[rows * c.VocabSize];
        _device.Download(_logits, 0, System.Runtime.InteropServices.MemoryMarshal.AsBytes(logits.AsSpan()));
        return logits;
    }

    private int SlotIndex(int layer, int expert) => layer * _config.NumLocalExperts + expert;

    private DeviceBuffer Own(long bytes, string purpose)
    {
        var buffer = _device.Allocate(bytes, purpose);
        _owned.Add(buffer);
        return buffer;
    }

    private DeviceBuffer Floats(long count, string purpose) => Own(count * sizeof(float), purpose);

    public void Dispose()
    {
        foreach (var buffer in _owned)
            buffer.Dispose();
    }
}
