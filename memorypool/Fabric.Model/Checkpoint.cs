using System.Text.Json;

namespace Fabric.Model;

/// <summary>
/// A Hugging Face MoE checkpoint directory opened and checked: its <see cref="ModelConfig"/>, every routed expert's
/// three tensors by (layer, expert), and every other tensor (the dense part: embeddings, attention, norms, routers,
/// shared experts, LM head) by name. Opening reads only headers; tensor bytes stay in the files.
/// </summary>
public sealed class Checkpoint
{
    /// <summary>The index file of a sharded checkpoint.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly ExpertTensors[] _experts;
    private readonly Dictionary<string, TensorEntry> _denseByName;

    private Checkpoint(string directory, ModelConfig config, IReadOnlyList<SafetensorsFile> files, ExpertTensors[] experts, List<TensorEntry> dense, List<ExpertTensors> shared)
    {
        Directory = directory;
        Config = config;
        Files = files;
        _experts = experts;
        Dense = dense;
        _denseByName = dense.ToDictionary(t => t.Name, StringComparer.Ordinal);
        SharedExperts = shared;
    }

    /// <summary>The checkpoint directory.</summary>
    public string Directory { get; }

    public ModelConfig Config { get; }

    /// <summary>The safetensors files, headers parsed.</summary>
    public IReadOnlyList<SafetensorsFile> Files { get; }

    /// <summary>Every routed expert, ordered by expert layer (index among the sparse layers, <see cref="ModelConfig.ExpertLayerOf"/>) then expert.</summary>
    public IReadOnlyList<ExpertTensors> Experts => _experts;

    /// <summary>The tensors that are not routed experts, in file order.</summary>
    public IReadOnlyList<TensorEntry> Dense { get; }

    /// <summary>The always-on shared MLPs (Qwen2-MoE's shared expert, DeepSeek-V2's shared experts; Expert = -1, Layer = the model layer), one per sparse layer; dense weights, never paged. Their tensors are in <see cref="Dense"/> too.</summary>
    public IReadOnlyList<ExpertTensors> SharedExperts { get; }

    /// <summary>The expert at (<paramref name="layer"/>, <paramref name="expert"/>); <paramref name="layer"/> is the expert layer.</summary>
    public ExpertTensors this[int layer, int expert] => _experts[(layer * Config.NumLocalExperts) + expert];

    /// <summary>The dense tensor named <paramref name="name"/>, or null.</summary>
    public TensorEntry? FindDense(string name) => _denseByName.GetValueOrDefault(name);

    /// <summary>The router weight of model layer <paramref name="layer"/> ([experts, hidden]); the layer must be sparse.</summary>
    public TensorEntry Router(int layer) => _denseByName[TensorNames.Router(Config.Architecture, layer)];

    /// <summary>Total bytes of all routed experts.</summary>
    public long ExpertBytes => _experts.Sum(e => e.Bytes);

    /// <summary>Total bytes of the dense tensors.</summary>
    public long DenseBytes => Dense.Sum(t => t.Length);

    /// <summary>
    /// Opens <paramref name="directory"/>: config.json, then model.safetensors.index.json when present, else every
    /// *.safetensors file. Throws <see cref="CheckpointException"/> with one sentence naming the file and tensor.
    /// </summary>
    public static Checkpoint Open(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
            throw new CheckpointException($"The checkpoint directory {directory} does not exist.");
        var config = ModelConfigReader.Load(Path.Combine(directory, "config.json"));
        var (files, owner) = OpenFiles(directory);

        var experts = new ExpertTensors?[config.TotalExperts];
        var parts = new TensorEntry?[config.TotalExperts, 3];
        var dense = new List<TensorEntry>();
        foreach (var file in files)
        {
            foreach (var tensor in file.Tensors)
            {
                if (owner is not null && (!owner.TryGetValue(tensor.Name, out var listed) || listed != file.Path))
                    continue;
                if (!TensorNames.TryParseExpert(tensor.Name, out var layer, out var expert, out var projection))
                {
                    dense.Add(tensor);
                    continue;
                }
                if (!TensorNames.IsNamingOf(config.Architecture, tensor.Name))
                    throw new CheckpointException($"{file.Path}: tensor {tensor.Name} uses another architecture's expert naming than config.json's '{config.Architecture}'.");
                if (layer >= config.NumHiddenLayers || expert >= config.NumLocalExperts)
                    throw new CheckpointException($"{file.Path}: tensor {tensor.Name} names layer {layer}, expert {expert}, outside the {config.NumHiddenLayers} layers × {config.NumLocalExperts} experts of config.json.");
                var expertLayer = config.ExpertLayerOf(layer);
                if (expertLayer < 0)
                    throw new CheckpointException($"{file.Path}: tensor {tensor.Name} is a routed expert of layer {layer}, which config.json makes a dense MLP layer.");
                var index = (expertLayer * config.NumLocalExperts) + expert;
                if (parts[index, (int)projection] is not null)
                    throw new CheckpointException($"{file.Path}: tensor {tensor.Name} appears twice in the checkpoint.");
                CheckExpertShape(config, tensor, projection);
                parts[index, (int)projection] = tensor;
            }
        }

        if (owner is not null)
        {
            var found = files.SelectMany(f => f.Tensors).Where(t => owner.TryGetValue(t.Name, out var p) && p == t.File).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            var lost = owner.FirstOrDefault(kv => !found.Contains(kv.Key));
            if (lost.Key is not null)
                throw new CheckpointException($"{Path.Combine(directory, IndexFileName)} lists tensor {lost.Key} in {lost.Value}, but that file has no such tensor.");
        }

        for (var layer = 0; layer < config.NumHiddenLayers; layer++)
        {
            var expertLayer = config.ExpertLayerOf(layer);
            if (expertLayer < 0)
                continue;
            for (var expert = 0; expert < config.NumLocalExperts; expert++)
            {
                var index = (expertLayer * config.NumLocalExperts) + expert;
                for (var p = 0; p < 3; p++)
                {
                    if (parts[index, p] is null)
                        throw new CheckpointException($"Checkpoint {directory} is missing tensor {TensorNames.Expert(config.Architecture, layer, expert, (ExpertProjection)p)} (layer {layer}, expert {expert}).");
                }
                experts[index] = new ExpertTensors(expertLayer, expert, parts[index, 0]!, parts[index, 1]!, parts[index, 2]!);
            }
        }

        var denseByName = dense.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var spec in ModelLayout.DenseTensors(config))
        {
            if (!denseByName.TryGetValue(spec.Name, out var tensor))
                throw new CheckpointException($"Checkpoint {directory} is missing tensor {spec.Name}, which a {ModelConfigReader.ClassName(config.Architecture)} with this config.json needs.");
            if (!tensor.Shape.AsSpan().SequenceEqual(spec.Shape))
                throw new CheckpointException($"{tensor.File}: tensor {spec.Name} has shape {tensor.ShapeText}, but config.json asks for [{string.Join(", ", spec.Shape)}].");
        }

        var shared = new List<ExpertTensors>();
        if (config.SharedMlpWidth > 0)
        {
            for (var layer = 0; layer < config.NumHiddenLayers; layer++)
            {
                if (!config.IsSparseLayer(layer))
                    continue;
                TensorEntry Get(ExpertProjection p) => denseByName[TensorNames.SharedMlp(config.Architecture, layer, p)];
                shared.Add(new ExpertTensors(layer, -1, Get(ExpertProjection.Gate), Get(ExpertProjection.Up), Get(ExpertProjection.Down)));
            }
        }

        return new Checkpoint(directory, config, files, experts!, dense, shared);
    }

    private static void CheckExpertShape(ModelConfig config, TensorEntry tensor, ExpertProjection projection)
    {
        long[] expected = projection == ExpertProjection.Down
            ? [config.HiddenSize, config.IntermediateSize]
            : [config.IntermediateSize, config.HiddenSize];
        if (!tensor.Shape.AsSpan().SequenceEqual(expected))
            throw new CheckpointException($"{tensor.File}: tensor {tensor.Name} has shape {tensor.ShapeText}, but config.json asks for [{expected[0]}, {expected[1]}].");
    }

    private static (List<SafetensorsFile> Files, Dictionary<string, string>? Owner) OpenFiles(string directory)
    {
        var indexPath = Path.Combine(directory, IndexFileName);
        if (File.Exists(indexPath))
        {
            var weightMap = ReadIndex(indexPath);
            var owner = new Dictionary<string, string>(StringComparer.Ordinal);
            var files = new List<SafetensorsFile>();
            foreach (var fileName in weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                if (fileName.Contains('/') || fileName.Contains('\\') || fileName is "." or "..")
                    throw new CheckpointException($"{indexPath} is corrupt: it names the file '{fileName}', which is not a file in the checkpoint directory.");
                var path = Path.Combine(directory, fileName);
                if (!File.Exists(path))
                    throw new CheckpointException($"{indexPath} lists {fileName}, which does not exist in {directory}.");
                files.Add(SafetensorsFile.Open(path));
            }
            foreach (var (tensor, fileName) in weightMap)
                owner[tensor] = Path.Combine(directory, fileName);
            return (files, owner);
        }

        var paths = System.IO.Directory.GetFiles(directory, "*.safetensors").Order(StringComparer.Ordinal).ToList();
        if (paths.Count == 0)
            throw new CheckpointException($"The checkpoint directory {directory} holds no .safetensors file.");
        var opened = paths.Select(SafetensorsFile.Open).ToList();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in opened)
        {
            foreach (var t in f.Tensors)
            {
                if (!seen.TryAdd(t.Name, f.Path))
                    throw new CheckpointException($"{f.Path}: tensor {t.Name} is also in {seen[t.Name]}; without {IndexFileName} each tensor must be in one file.");
            }
        }
        return (opened, null);
    }

    private static Dictionary<string, string> ReadIndex(string indexPath)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointException($"{indexPath} is corrupt: it has no weight_map object.");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(entry.Value.GetString()))
                    throw new CheckpointException($"{indexPath} is corrupt: tensor {entry.Name} maps to {entry.Value.GetRawText()}, not a file name.");
                result[entry.Name] = entry.Value.GetString()!;
            }
            if (result.Count == 0)
                throw new CheckpointException($"{indexPath} is corrupt: its weight_map is empty.");
            return result;
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{indexPath} is corrupt: {e.Message}", e);
        }
    }
}
