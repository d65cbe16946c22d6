using Fabric.Engine.Device;
using Fabric.Model;

namespace Fabric.Engine.Runtime.Families;

/// <summary>
/// The MLPs that are dense weights, always resident and never paged: a dense layer's MLP (Qwen's
/// <c>mlp_only_layers</c> / <c>decoder_sparse_step</c>, DeepSeek's <c>first_k_dense_replace</c>) and a sparse
/// layer's shared expert(s) (Qwen2-MoE's <c>shared_expert</c> scaled by sigmoid(<c>shared_expert_gate</c> · x),
/// DeepSeek-V2's <c>shared_experts</c>). Each is down(silu(gate x) ⊙ up x), added to the residual stream.
/// </summary>
public sealed class SharedMlp
{
    private readonly IComputeDevice _device;
    private readonly ModelConfig _c;
    private readonly ExpertView?[] _mlps;
    private readonly DeviceMatrix?[] _gates;
    private readonly DeviceBuffer? _output, _gateLogits;
    private readonly int[] _rows;
    private readonly float[] _weights;
    private readonly float[] _gateHost;

    internal SharedMlp(ModelConfig c, EngineOptions o, IComputeDevice device, DenseWeights dense, Func<long, string, DeviceBuffer> allocate)
    {
        _device = device;
        _c = c;
        var chunk = Math.Max(1, o.PrefillChunk);
        if (Needed(c))
        {
            _output = allocate((long)chunk * c.HiddenSize * sizeof(float), "shared MLP output");
            _gateLogits = allocate((long)chunk * sizeof(float), "shared expert gate");
        }
        _rows = [.. Enumerable.Range(0, chunk)];
        _weights = new float[chunk];
        _gateHost = new float[chunk];
        _mlps = new ExpertView?[c.NumHiddenLayers];
        _gates = new DeviceMatrix?[c.NumHiddenLayers];
        for (var l = 0; l < c.NumHiddenLayers; l++)
        {
            if (!c.IsSparseLayer(l))
                _mlps[l] = new ExpertView(dense[TensorNames.DenseMlp(l, ExpertProjection.Gate)], dense[TensorNames.DenseMlp(l, ExpertProjection.Up)], dense[TensorNames.DenseMlp(l, ExpertProjection.Down)]);
            else if (c.SharedMlpWidth > 0)
                _mlps[l] = new ExpertView(dense[TensorNames.SharedMlp(c.Architecture, l, ExpertProjection.Gate)], dense[TensorNames.SharedMlp(c.Architecture, l, ExpertProjection.Up)],
                    dense[TensorNames.SharedMlp(c.Architecture, l, ExpertProjection.Down)]);
            if (c.IsSparseLayer(l) && c.SharedMlpGated)
                _gates[l] = dense[TensorNames.SharedExpertGate(l)];
        }
    }

    /// <summary>The widest dense MLP (FFN width), for sizing the expert scratch.</summary>
    public static int MaxWidth(ModelConfig c) => Math.Max(c.SharedMlpWidth, c.ExpertLayers < c.NumHiddenLayers ? c.DenseIntermediateSize : 0);

    /// <summary>Scratch floats per row: the MLP output and the gate logit, when the model has a dense MLP or shared expert.</summary>
    public static long ScratchFloatsPerRow(ModelConfig c) => Needed(c) ? c.HiddenSize + 1L : 0;

    private static bool Needed(ModelConfig c) => c.ExpertLayers < c.NumHiddenLayers || c.SharedMlpWidth > 0;

    /// <summary>Whether model layer <paramref name="layer"/> has a dense MLP or a shared expert.</summary>
    public bool Has(int layer) => _mlps[layer] is not null;

    /// <summary>h[r] += (gate ? sigmoid(gate · x[r]) : 1) · mlp(x[r]) over <paramref name="rows"/> rows.</summary>
    public void AddTo(DeviceBuffer h, DeviceBuffer x, int rows, int layer, ExpertScratch scratch)
    {
        var mlp = _mlps[layer] ?? throw new InvalidOperationException($"Layer {layer} has no dense MLP.");
        _device.ExpertForward(mlp, x, _rows.AsSpan(0, rows), _output!, _rows.AsSpan(0, rows), scratch);
        var weights = _weights.AsSpan(0, rows);
        if (_gates[layer] is { } gate)
        {
            _device.MatMul(x, rows, gate, _gateLogits!);
            _device.Download(_gateLogits!, 0, System.Runtime.InteropServices.MemoryMarshal.AsBytes(_gateHost.AsSpan(0, rows)));
            for (var r = 0; r < rows; r++)
                weights[r] = 1f / (1f + MathF.Exp(-_gateHost[r]));
        }
        else
        {
            weights.Fill(1f);
        }
        _device.MoeCombine(_output!, weights, rows, 1, _c.HiddenSize, h);
    }
}
