using System.Text.Json;

namespace Fabric.Model;

/// <summary>Reads and writes Hugging Face <c>config.json</c> files for the architectures in <see cref="Architectures"/>.</summary>
public static class ModelConfigReader
{
    private static readonly Dictionary<string, string> ArchitectureByClass = new(StringComparer.Ordinal)
    {
        ["MixtralForCausalLM"] = Architectures.Mixtral,
        ["Qwen2MoeForCausalLM"] = Architectures.Qwen2Moe,
        ["Qwen3MoeForCausalLM"] = Architectures.Qwen3Moe,
        ["OlmoeForCausalLM"] = Architectures.Olmoe,
        ["DeepseekV2ForCausalLM"] = Architectures.DeepseekV2,
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

    /// <summary>
    /// Parses the root object of a config.json; <paramref name="source"/> names it in errors. Missing fields take
    /// the defaults of the family's Hugging Face <c>configuration_*.py</c>; a field whose value the engine does not
    /// implement (rope scaling, sliding window, attention bias where the family has none, another activation or
    /// scoring function) is refused with one sentence naming it.
    /// </summary>
    public static ModelConfig Parse(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{source}: a config.json must hold a JSON object.");

        var architecture = DetectArchitecture(root, source);
        RefuseUnsupported(root, source, architecture);
        var hidden = Int(root, source, "hidden_size");
        var heads = Int(root, source, "num_attention_heads");

        var dtypeName = OptionalString(root, "torch_dtype") ?? OptionalString(root, "dtype") ?? "bfloat16";
        if (!TensorDtypes.TryParse(dtypeName, out var dtype))
            throw new CheckpointException($"{source}: torch_dtype '{dtypeName}' is not one Fabric handles (float32, float16, bfloat16).");

        var config = new ModelConfig
        {
            Architecture = architecture,
            VocabSize = Int(root, source, "vocab_size"),
            HiddenSize = hidden,
            NumHiddenLayers = Int(root, source, "num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = OptionalInt(root, source, "num_key_value_heads") ?? heads,
            HeadDim = OptionalInt(root, source, "head_dim") ?? (heads > 0 ? hidden / heads : 0),
            NumExpertsPerTok = Int(root, source, "num_experts_per_tok"),
            TieWordEmbeddings = OptionalBool(root, source, "tie_word_embeddings") ?? false,
            Dtype = dtype,
            RouterSkew = OptionalDouble(root, source, "fabric_router_skew") ?? 0,
        };
        config = architecture switch
        {
            Architectures.Mixtral => config with
            {
                IntermediateSize = Int(root, source, "intermediate_size"),
                NumLocalExperts = Int(root, source, "num_local_experts"),
                RmsNormEps = OptionalDouble(root, source, "rms_norm_eps") ?? 1e-5,
                RopeTheta = OptionalDouble(root, source, "rope_theta") ?? 1e6,
                MaxPositionEmbeddings = OptionalInt(root, source, "max_position_embeddings") ?? 4096 * 32,
                NormTopKProb = true,
            },
            Architectures.Olmoe => config with
            {
                IntermediateSize = Int(root, source, "intermediate_size"),
                NumLocalExperts = Int(root, source, "num_experts"),
                RmsNormEps = OptionalDouble(root, source, "rms_norm_eps") ?? 1e-5,
                RopeTheta = OptionalDouble(root, source, "rope_theta") ?? 10000.0,
                MaxPositionEmbeddings = OptionalInt(root, source, "max_position_embeddings") ?? 4096,
                NormTopKProb = OptionalBool(root, source, "norm_topk_prob") ?? false,
                ClipQkv = OptionalDouble(root, source, "clip_qkv") ?? 0,
            },
            Architectures.Qwen2Moe or Architectures.Qwen3Moe => config with
            {
                IntermediateSize = Int(root, source, "moe_intermediate_size"),
                DenseIntermediateSize = OptionalInt(root, source, "intermediate_size") ?? (architecture == Architectures.Qwen2Moe ? 5632 : 6144),
                NumLocalExperts = Int(root, source, "num_experts"),
                RmsNormEps = OptionalDouble(root, source, "rms_norm_eps") ?? 1e-6,
                RopeTheta = OptionalDouble(root, source, "rope_theta") ?? 10000.0,
                MaxPositionEmbeddings = OptionalInt(root, source, "max_position_embeddings") ?? 32768,
                NormTopKProb = OptionalBool(root, source, "norm_topk_prob") ?? false,
                QkvBias = architecture == Architectures.Qwen2Moe,
                SharedExpertIntermediateSize = architecture == Architectures.Qwen2Moe ? OptionalInt(root, source, "shared_expert_intermediate_size") ?? 5632 : 0,
                DecoderSparseStep = OptionalInt(root, source, "decoder_sparse_step") ?? 1,
                MlpOnlyLayers = IntList(root, source, "mlp_only_layers"),
            },
            _ => config with
            {
                IntermediateSize = Int(root, source, "moe_intermediate_size"),
                DenseIntermediateSize = OptionalInt(root, source, "intermediate_size") ?? 11008,
                NumLocalExperts = OptionalInt(root, source, "n_routed_experts")
                    ?? throw new CheckpointException($"{source}: n_routed_experts is null, so the model has no routed experts for Fabric to page."),
                RmsNormEps = OptionalDouble(root, source, "rms_norm_eps") ?? 1e-6,
                RopeTheta = OptionalDouble(root, source, "rope_theta") ?? 10000.0,
                MaxPositionEmbeddings = OptionalInt(root, source, "max_position_embeddings") ?? 2048,
                NormTopKProb = OptionalBool(root, source, "norm_topk_prob") ?? false,
                NumSharedExperts = OptionalInt(root, source, "n_shared_experts") ?? 0,
                RoutedScalingFactor = OptionalDouble(root, source, "routed_scaling_factor") ?? 1.0,
                TopkMethod = (OptionalString(root, "topk_method") ?? "greedy") is "gready" ? "greedy" : OptionalString(root, "topk_method") ?? "greedy",
                NGroup = OptionalInt(root, source, "n_group") ?? 0,
                TopkGroup = OptionalInt(root, source, "topk_group") ?? 0,
                FirstKDenseReplace = OptionalInt(root, source, "first_k_dense_replace") ?? 0,
                MoeLayerFreq = OptionalInt(root, source, "moe_layer_freq") ?? 1,
                QLoraRank = OptionalInt(root, source, "q_lora_rank") ?? 0,
                KvLoraRank = OptionalInt(root, source, "kv_lora_rank") ?? 512,
                QkNopeHeadDim = OptionalInt(root, source, "qk_nope_head_dim") ?? 128,
                QkRopeHeadDim = OptionalInt(root, source, "qk_rope_head_dim") ?? 64,
                VHeadDim = OptionalInt(root, source, "v_head_dim") ?? 128,
            },
        };
        if (config.UsesLatentAttention)
            config = config with { HeadDim = config.QkHeadDim, NumKeyValueHeads = heads };
        config.Validate(source);
        return config;
    }

    /// <summary>Refuses the fields whose semantics the engine does not implement, with one sentence naming the field.</summary>
    private static void RefuseUnsupported(JsonElement root, string source, string architecture)
    {
        if (root.TryGetProperty("rope_scaling", out var scaling) && scaling.ValueKind != JsonValueKind.Null)
        {
            var kind = scaling.ValueKind == JsonValueKind.Object
                ? OptionalString(scaling, "type") ?? OptionalString(scaling, "rope_type") ?? "unnamed"
                : Describe(scaling);
            throw new CheckpointException($"{source}: rope_scaling ({kind}) is set, and Fabric implements plain RoPE only.");
        }
        var act = OptionalString(root, "hidden_act");
        if (act is not null and not "silu")
            throw new CheckpointException($"{source}: hidden_act '{act}' is not SiLU, the only activation Fabric implements.");
        if (architecture is Architectures.Qwen2Moe or Architectures.Qwen3Moe)
        {
            if (OptionalBool(root, source, "use_sliding_window") == true)
                throw new CheckpointException($"{source}: use_sliding_window is true, and Fabric implements full attention only.");
        }
        else if (OptionalInt(root, source, "sliding_window") is { } window)
        {
            throw new CheckpointException($"{source}: sliding_window ({window}) is set, and Fabric implements full attention only.");
        }
        if (architecture != Architectures.Qwen2Moe && OptionalBool(root, source, "attention_bias") == true)
            throw new CheckpointException($"{source}: attention_bias is true, and Fabric implements this family's attention without biases only.");
        if (architecture == Architectures.DeepseekV2)
        {
            var scoring = OptionalString(root, "scoring_func") ?? "softmax";
            if (scoring != "softmax")
                throw new CheckpointException($"{source}: scoring_func '{scoring}' is not softmax, the only routing score Fabric implements for DeepSeek-V2.");
        }
    }

    /// <summary>Writes <paramref name="config"/> as a Hugging Face config.json that transformers would load.</summary>
    public static void Save(ModelConfig config, string path)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteStartArray("architectures");
        json.WriteStringValue(ClassName(config.Architecture));
        json.WriteEndArray();
        json.WriteString("model_type", config.Architecture);
        json.WriteNumber("vocab_size", config.VocabSize);
        json.WriteNumber("hidden_size", config.HiddenSize);
        json.WriteNumber("num_hidden_layers", config.NumHiddenLayers);
        json.WriteNumber("num_attention_heads", config.NumAttentionHeads);
        json.WriteNumber("num_key_value_heads", config.NumKeyValueHeads);
        json.WriteNumber("num_experts_per_tok", config.NumExpertsPerTok);
        json.WriteNumber("rms_norm_eps", config.RmsNormEps);
        json.WriteNumber("rope_theta", config.RopeTheta);
        json.WriteNull("rope_scaling");
        json.WriteNumber("max_position_embeddings", config.MaxPositionEmbeddings);
        json.WriteBoolean("tie_word_embeddings", config.TieWordEmbeddings);
        json.WriteString("torch_dtype", config.Dtype.TorchName());
        json.WriteString("hidden_act", "silu");
        json.WriteBoolean("attention_bias", false);
        switch (config.Architecture)
        {
            case Architectures.Mixtral:
                json.WriteNumber("intermediate_size", config.IntermediateSize);
                json.WriteNumber("num_local_experts", config.NumLocalExperts);
                json.WriteNumber("head_dim", config.HeadDim);
                json.WriteNull("sliding_window");
                break;
            case Architectures.Olmoe:
                json.WriteNumber("intermediate_size", config.IntermediateSize);
                json.WriteNumber("num_experts", config.NumLocalExperts);
                json.WriteBoolean("norm_topk_prob", config.NormTopKProb);
                if (config.ClipQkv > 0)
                    json.WriteNumber("clip_qkv", config.ClipQkv);
                else
                    json.WriteNull("clip_qkv");
                break;
            case Architectures.Qwen2Moe:
            case Architectures.Qwen3Moe:
                json.WriteNumber("intermediate_size", config.DenseIntermediateSize);
                json.WriteNumber("moe_intermediate_size", config.IntermediateSize);
                json.WriteNumber("num_experts", config.NumLocalExperts);
                json.WriteBoolean("norm_topk_prob", config.NormTopKProb);
                json.WriteNumber("decoder_sparse_step", config.DecoderSparseStep);
                json.WriteStartArray("mlp_only_layers");
                foreach (var l in config.MlpOnlyLayers)
                    json.WriteNumberValue(l);
                json.WriteEndArray();
                json.WriteBoolean("use_sliding_window", false);
                if (config.Architecture == Architectures.Qwen2Moe)
                    json.WriteNumber("shared_expert_intermediate_size", config.SharedExpertIntermediateSize);
                else
                    json.WriteNumber("head_dim", config.HeadDim);
                break;
            default:
                json.WriteNumber("intermediate_size", config.DenseIntermediateSize);
                json.WriteNumber("moe_intermediate_size", config.IntermediateSize);
                json.WriteNumber("n_routed_experts", config.NumLocalExperts);
                if (config.NumSharedExperts > 0)
                    json.WriteNumber("n_shared_experts", config.NumSharedExperts);
                else
                    json.WriteNull("n_shared_experts");
                json.WriteBoolean("norm_topk_prob", config.NormTopKProb);
                json.WriteNumber("routed_scaling_factor", config.RoutedScalingFactor);
                json.WriteString("topk_method", config.TopkMethod);
                WriteOptional(json, "n_group", config.NGroup);
                WriteOptional(json, "topk_group", config.TopkGroup);
                json.WriteString("scoring_func", "softmax");
                json.WriteNumber("first_k_dense_replace", config.FirstKDenseReplace);
                json.WriteNumber("moe_layer_freq", config.MoeLayerFreq);
                WriteOptional(json, "q_lora_rank", config.QLoraRank);
                json.WriteNumber("kv_lora_rank", config.KvLoraRank);
                json.WriteNumber("qk_nope_head_dim", config.QkNopeHeadDim);
                json.WriteNumber("qk_rope_head_dim", config.QkRopeHeadDim);
                json.WriteNumber("v_head_dim", config.VHeadDim);
                break;
        }
        json.WriteNumber("fabric_router_skew", config.RouterSkew);
        json.WriteEndObject();
    }

    /// <summary>The <c>architectures[0]</c> class name of <paramref name="architecture"/>.</summary>
    public static string ClassName(string architecture) => ArchitectureByClass.First(kv => kv.Value == architecture).Key;

    private static void WriteOptional(Utf8JsonWriter json, string name, int value)
    {
        if (value > 0)
            json.WriteNumber(name, value);
        else
            json.WriteNull(name);
    }

    private static bool? OptionalBool(JsonElement root, string source, string name)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new CheckpointException($"{source}: {name} must be true or false, not {Describe(v)}."),
        };
    }

    private static int[] IntList(JsonElement root, string source, string name)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return [];
        if (v.ValueKind != JsonValueKind.Array)
            throw new CheckpointException($"{source}: {name} must be a list of layer numbers, not {Describe(v)}.");
        var list = new List<int>();
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out var i) || i < 0)
                throw new CheckpointException($"{source}: {name} must be a list of layer numbers, not {Describe(v)}.");
            list.Add(i);
        }
        return [.. list];
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
