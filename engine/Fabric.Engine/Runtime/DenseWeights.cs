using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Sources;
using Fabric.Model;

namespace Fabric.Engine.Runtime;

/// <summary>
/// The model's dense tensors (everything but the routed experts: embeddings, attention, norms, routers, shared
/// experts, dense MLP layers, LM head) in one device buffer, by their checkpoint names; always resident.
/// </summary>
public sealed class DenseWeights : IDisposable
{
    private readonly DeviceBuffer _buffer;
    private readonly Dictionary<string, DeviceMatrix> _byName;

    private DenseWeights(DeviceBuffer buffer, ModelConfig config, Dictionary<string, DeviceMatrix> byName)
    {
        _buffer = buffer;
        _byName = byName;
        var layers = config.NumHiddenLayers;
        Embedding = Get(byName, "model.embed_tokens.weight");
        FinalNorm = Get(byName, "model.norm.weight");
        LmHead = config.TieWordEmbeddings && !byName.ContainsKey("lm_head.weight") ? Embedding : Get(byName, "lm_head.weight");
        Layers = new LayerWeights[layers];
        for (var l = 0; l < layers; l++)
        {
            var p = $"model.layers.{l}.";
            Layers[l] = new LayerWeights(
                Get(byName, p + "input_layernorm.weight"),
                Get(byName, p + "post_attention_layernorm.weight"),
                config.IsSparseLayer(l) ? Get(byName, TensorNames.Router(config.Architecture, l)) : null);
        }
    }

    public DeviceMatrix Embedding { get; }

    public DeviceMatrix FinalNorm { get; }

    public DeviceMatrix LmHead { get; }

    public LayerWeights[] Layers { get; }

    /// <summary>The dense tensor named <paramref name="name"/>; a missing one throws <see cref="FabricException"/>.</summary>
    public DeviceMatrix this[string name] => Get(_byName, name);

    /// <summary>Bytes the dense tensors take on the device (each 64-byte aligned).</summary>
    public static long DeviceBytes(IWeightSource source) => source.DenseTensors.Values.Sum(t => Align(t.Bytes));

    /// <summary>Reserves the dense buffer on <paramref name="device"/> and loads every dense tensor into it.</summary>
    public static async Task<DenseWeights> LoadAsync(IComputeDevice device, IWeightSource source, CancellationToken cancellationToken)
    {
        var buffer = device.Allocate(DeviceBytes(source), "dense weights");
        try
        {
            var byName = new Dictionary<string, DeviceMatrix>(StringComparer.Ordinal);
            using var staging = new NativeBuffer(Math.Max(1, source.DenseTensors.Values.Max(t => t.Bytes)));
            long offset = 0;
            foreach (var t in source.DenseTensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                await source.ReadDenseAsync(t.Name, staging.Memory[..(int)t.Bytes], cancellationToken).ConfigureAwait(false);
                device.Upload(buffer, offset, staging.Span[..(int)t.Bytes]);
                var rows = t.Shape.Length == 2 ? (int)t.Shape[0] : 1;
                var cols = (int)t.Shape[^1];
                byName[t.Name] = new DeviceMatrix(buffer, offset, WeightTypes.Parse(t.Dtype.SafetensorsName()), rows, cols);
                offset += Align(t.Bytes);
            }
            return new DenseWeights(buffer, source.Config, byName);
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    public void Dispose() => _buffer.Dispose();

    private static long Align(long bytes) => (bytes + 63) / 64 * 64;

    private static DeviceMatrix Get(Dictionary<string, DeviceMatrix> byName, string name) =>
        byName.TryGetValue(name, out var m) ? m : throw new FabricException($"The model has no dense tensor {name}, which the forward pass needs.");
}

/// <summary>One decoder layer's norms and router (null in a dense layer); the attention and MLP blocks hold their own weights.</summary>
public sealed record LayerWeights(DeviceMatrix InputNorm, DeviceMatrix PostNorm, DeviceMatrix? Router);
