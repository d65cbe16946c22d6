using System.Text.Json;

namespace Fabric.Model;

/// <summary>Reads and writes Hugging Face <c>config.json</c> files for the architectures in <see cref="Architectures"/>.</summary>
public static class ModelConfigReader
{
    private static readonly Dictionary<string, string> ArchitectureByClass = new(StringComparer.Ordinal)
    {
        ["MixtralForCausalLM"] = Architectures.Mixtral,
        ["Qwen2MoeForCausalLM"] = Architectures.Qwen2Moe,
        ["OlmoeForCausalLM"] = Architectures.Olmoe,
    };

    /// <summary>Reads <paramref name="path"/> (a config.json); throws <see cref="CheckpointException"/> naming the file and field.</summary>
    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new CheckpointException($"{path} does not exist; a checkpoint directory needs a Hugging Face config.json.");
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return Parse(document.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path} is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Parses the root object of a config.json; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{source}: a config.json must hold a JSON object.");

        var architecture = DetectArchitecture(root, source);
        var hidden = Int(root, source, "hidden_size");
        var heads = Int(root, source, "num_attention_heads");
        var experts = architecture == Architectures.Mixtral ? Int(root, source, "num_local_experts") : Int(root, source, "num_experts");
        var expertWidth = architecture == Architectures.Qwen2Moe ? Int(root, source, "moe_intermediate_size") : Int(root, source, "intermediate_size");

        if (architecture == Architectures.Qwen2Moe)
        {
            var step = OptionalInt(root, source, "decoder_sparse_step") ?? 1;
            var denseLayers = root.TryGetProperty("mlp_only_layers", out var m) && m.ValueKind == JsonValueKind.Array ? m.GetArrayLength() : 0;
            if (step != 1 || denseLayers != 0)
                throw new CheckpointException($"{source}: Qwen2-MoE models with dense MLP layers (decoder_sparse_step {step}, {denseLayers} mlp_only_layers) are not supported; every layer must be sparse.");
        }

        var dtypeName = OptionalString(root, "torch_dtype") ?? OptionalString(root, "dtype") ?? "bfloat16";
        if (!TensorDtypes.TryParse(dtypeName, out var dtype))
            throw new CheckpointException($"{source}: torch_dtype '{dtypeName}' is not one Fabric handles (float32, float16, bfloat16).");

        var config = new ModelConfig
        {
            Architecture = architecture,
            VocabSize = Int(root, source, "vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = expertWidth,
            NumHiddenLayers = Int(root, source, "num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = OptionalInt(root, source, "num_key_value_heads") ?? heads,
            HeadDim = OptionalInt(root, source, "head_dim") ?? (heads > 0 ? hidden / heads : 0),
            NumLocalExperts = experts,
            NumExpertsPerTok = Int(root, source, "num_experts_per_tok"),
            RmsNormEps = OptionalDouble(root, source, "rms_norm_eps") ?? 1e-5,
            RopeTheta = OptionalDouble(root, source, "rope_theta") ?? 10000.0,
            MaxPositionEmbeddings = OptionalInt(root, source, "max_position_embeddings") ?? 4096,
            TieWordEmbeddings = root.TryGetProperty("tie_word_embeddings", out var tie) && tie.ValueKind == JsonValueKind.True,
            Dtype = dtype,
            NormTopKProb = architecture == Architectures.Mixtral
                || (root.TryGetProperty("norm_topk_prob", out var norm) && norm.ValueKind == JsonValueKind.True),
            SharedExpertIntermediateSize = architecture == Architectures.Qwen2Moe ? OptionalInt(root, source, "shared_expert_intermediate_size") ?? 0 : 0,
            SlidingWindow = OptionalInt(root, source, "sliding_window") ?? 0,
            RouterSkew = OptionalDouble(root, source, "fabric_router_skew") ?? 0,
        };
        config.Validate(source);
        return config;
    }

    /// <summary>Writes <paramref name="config"/> as a Hugging Face config.json that transformers would load.</summary>
    public static void Save(ModelConfig config, string path)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        var (className, expertsKey, widthKey) = config.Architecture switch
        {
            Architectures.Qwen2Moe => ("Qwen2MoeForCausalLM", "num_experts", "moe_intermediate_size"),
            Architectures.Olmoe => ("OlmoeForCausalLM", "num_experts", "intermediate_size"),
            _ => ("MixtralForCausalLM", "num_local_experts", "intermediate_size"),
        };
        json.WriteStartArray("architectures");
        json.WriteStringValue(className);
        json.WriteEndArray();
        json.WriteString("model_type", config.Architecture);
        json.WriteNumber("vocab_size", config.VocabSize);
        json.WriteNumber("hidden_size", config.HiddenSize);
        json.WriteNumber(widthKey, config.IntermediateSize);
        json.WriteNumber("num_hidden_layers", config.NumHiddenLayers);
        json.WriteNumber("num_attention_heads", config.NumAttentionHeads);
        json.WriteNumber("num_key_value_heads", config.NumKeyValueHeads);
        json.WriteNumber("head_dim", config.HeadDim);
        json.WriteNumber(expertsKey, config.NumLocalExperts);
        json.WriteNumber("num_experts_per_tok", config.NumExpertsPerTok);
        json.WriteNumber("rms_norm_eps", config.RmsNormEps);
        json.WriteNumber("rope_theta", config.RopeTheta);
        json.WriteNumber("max_position_embeddings", config.MaxPositionEmbeddings);
        json.WriteBoolean("tie_word_embeddings", config.TieWordEmbeddings);
        json.WriteString("torch_dtype", config.Dtype.TorchName());
        json.WriteString("hidden_act", "silu");
        if (config.SlidingWindow > 0)
            json.WriteNumber("sliding_window", config.SlidingWindow);
        else
            json.WriteNull("sliding_window");
        if (config.Architecture != Architectures.Mixtral)
            json.WriteBoolean("norm_topk_prob", config.NormTopKProb);
        if (config.Architecture == Architectures.Qwen2Moe)
            json.WriteNumber("shared_expert_intermediate_size", config.SharedExpertIntermediateSize);
        json.WriteNumber("fabric_router_skew", config.RouterSkew);
        json.WriteEndObject();
    }

    private static string DetectArchitecture(JsonElement root, string source)
    {
        var modelType = OptionalString(root, "model_type");
        if (modelType is not null)
        {
            if (Architectures.All.Contains(modelType))
                return modelType;
            throw new CheckpointException($"{source}: unknown architecture '{modelType}' (model_type); Fabric reads {string.Join(", ", Architectures.All)}.");
        }
        if (root.TryGetProperty("architectures", out var list) && list.ValueKind == JsonValueKind.Array && list.GetArrayLength() > 0)
        {
            var name = list[0].ValueKind == JsonValueKind.String ? list[0].GetString()! : list[0].ToString();
            if (ArchitectureByClass.TryGetValue(name, out var arch))
                return arch;
            throw new CheckpointException($"{source}: unknown architecture '{name}'; Fabric reads {string.Join(", ", ArchitectureByClass.Keys)}.");
        }
        throw new CheckpointException($"{source} names no architecture (neither model_type nor architectures).");
    }

    private static string? OptionalString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int Int(JsonElement root, string source, string name) =>
        OptionalInt(root, source, name) ?? throw new CheckpointException($"{source} has no {name}.");

    private static int? OptionalInt(JsonElement root, string source, string name)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i))
            return i;
        throw new CheckpointException($"{source}: {name} must be an integer, not {Describe(v)}.");
    }

    private static double? OptionalDouble(JsonElement root, string source, string name)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        if (v.ValueKind == JsonValueKind.Number)
            return v.GetDouble();
        throw new CheckpointException($"{source}: {name} must be a number, not {Describe(v)}.");
    }

    private static string Describe(JsonElement v)
    {
        var text = v.GetRawText();
        return text.Length > 40 ? text[..40] + "..." : text;
    }
}
