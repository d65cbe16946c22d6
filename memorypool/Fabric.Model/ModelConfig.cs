using System.Text.Json.Serialization;
using MessagePack;

namespace Fabric.Model;

/// <summary>The model architectures Fabric reads, by their Hugging Face <c>model_type</c>.</summary>
public static class Architectures
{
    public const string Mixtral = "mixtral";
    public const string Qwen2Moe = "qwen2_moe";
    public const string Olmoe = "olmoe";

    /// <summary>Every architecture the checkpoint reader knows.</summary>
    public static IReadOnlyList<string> All { get; } = [Mixtral, Qwen2Moe, Olmoe];
}

/// <summary>
/// The description of a sparse MoE decoder model, as read from a Hugging Face <c>config.json</c>
/// (<see cref="ModelConfigReader"/>) or written by <see cref="ModelGenerator"/>. It travels in the pool's catalog
/// (MessagePack keys) and in routing-trace headers (JSON, snake_case names as in Hugging Face configs).
/// Sizes are element counts, not bytes.
/// </summary>
[MessagePackObject]
public sealed record ModelConfig
{
    /// <summary>"mixtral", "qwen2_moe" or "olmoe" (<see cref="Architectures"/>).</summary>
    [Key(0)][JsonPropertyName("architecture")] public string Architecture { get; init; } = Architectures.Mixtral;
    [Key(1)][JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    [Key(2)][JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }

    /// <summary>The FFN width of one routed expert (Qwen2-MoE's <c>moe_intermediate_size</c>).</summary>
    [Key(3)][JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    [Key(4)][JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; }
    [Key(5)][JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; }
    [Key(6)][JsonPropertyName("num_key_value_heads")] public int NumKeyValueHeads { get; init; }
    [Key(7)][JsonPropertyName("head_dim")] public int HeadDim { get; init; }

    /// <summary>Routed experts per layer (Qwen2-MoE and OLMoE call it <c>num_experts</c>).</summary>
    [Key(8)][JsonPropertyName("num_local_experts")] public int NumLocalExperts { get; init; }

    /// <summary>Top-k: experts each token is routed to.</summary>
    [Key(9)][JsonPropertyName("num_experts_per_tok")] public int NumExpertsPerTok { get; init; }
    [Key(10)][JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get; init; } = 1e-5;
    [Key(11)][JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 1e6;
    [Key(12)][JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 4096;
    [Key(13)][JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; }

    /// <summary>The checkpoint's dtype (<c>torch_dtype</c>); tensors carry their own dtype too.</summary>
    [Key(14)][JsonPropertyName("dtype")][JsonConverter(typeof(JsonStringEnumConverter<TensorDtype>))] public TensorDtype Dtype { get; init; } = TensorDtype.BF16;

    /// <summary>Whether the top-k routing weights are renormalised to sum to 1 (Mixtral: always; Qwen2-MoE/OLMoE: <c>norm_topk_prob</c>).</summary>
    [Key(15)][JsonPropertyName("norm_topk_prob")] public bool NormTopKProb { get; init; } = true;

    /// <summary>Qwen2-MoE's shared expert FFN width (<c>shared_expert_intermediate_size</c>); 0 when the model has none.</summary>
    [Key(16)][JsonPropertyName("shared_expert_intermediate_size")] public int SharedExpertIntermediateSize { get; init; }

    /// <summary>Mixtral's sliding attention window in tokens; 0 when attention is full.</summary>
    [Key(17)][JsonPropertyName("sliding_window")] public int SlidingWindow { get; init; }

    /// <summary>The Zipf exponent the generator applied to each layer's router (0 = flat; informational, from <c>fabric_router_skew</c>).</summary>
    [Key(18)][JsonPropertyName("router_skew")] public double RouterSkew { get; init; }

    /// <summary>Routed expert tensors per expert: gate, up and down each hold <see cref="IntermediateSize"/> × <see cref="HiddenSize"/> elements.</summary>
    [IgnoreMember][JsonIgnore] public long ExpertElements => 3L * IntermediateSize * HiddenSize;

    /// <summary>Bytes of one routed expert (gate + up + down) in <see cref="Dtype"/>.</summary>
    [IgnoreMember][JsonIgnore] public long ExpertBytes => ExpertElements * Dtype.ByteSize();

    /// <summary>Routed experts in the whole model.</summary>
    [IgnoreMember][JsonIgnore] public int TotalExperts => NumHiddenLayers * NumLocalExperts;

    /// <summary>The most layers, and the most experts per layer, a model may have (the pager keeps each in 16 bits).</summary>
    public const int MaxLayersOrExperts = 65_536;

    /// <summary>
    /// Checks the numbers are usable; throws <see cref="CheckpointException"/> naming <paramref name="source"/> and
    /// the first bad field.
    /// </summary>
    public void Validate(string source)
    {
        if (!Architectures.All.Contains(Architecture))
            throw new CheckpointException($"{source}: unknown architecture '{Architecture}'; Fabric reads {string.Join(", ", Architectures.All)}.");
        Positive(VocabSize, "vocab_size");
        Positive(HiddenSize, "hidden_size");
        Positive(IntermediateSize, "intermediate_size");
        Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(NumKeyValueHeads, "num_key_value_heads");
        Positive(HeadDim, "head_dim");
        Positive(NumLocalExperts, "num_local_experts");
        Positive(NumExpertsPerTok, "num_experts_per_tok");
        Positive(MaxPositionEmbeddings, "max_position_embeddings");
        if (NumHiddenLayers > MaxLayersOrExperts || NumLocalExperts > MaxLayersOrExperts)
            throw new CheckpointException($"{source}: Fabric handles at most {MaxLayersOrExperts:N0} layers and {MaxLayersOrExperts:N0} experts per layer; this model has {NumHiddenLayers:N0} and {NumLocalExperts:N0}.");
        if (NumExpertsPerTok > NumLocalExperts)
            throw new CheckpointException($"{source}: num_experts_per_tok ({NumExpertsPerTok}) exceeds the number of experts ({NumLocalExperts}).");
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new CheckpointException($"{source}: num_attention_heads ({NumAttentionHeads}) is not a multiple of num_key_value_heads ({NumKeyValueHeads}).");
        if (!(RmsNormEps > 0) || !(RopeTheta > 0))
            throw new CheckpointException($"{source}: rms_norm_eps and rope_theta must be positive.");
        if (SharedExpertIntermediateSize < 0)
            throw new CheckpointException($"{source}: shared_expert_intermediate_size must not be negative.");

        void Positive(int value, string name)
        {
            if (value <= 0)
                throw new CheckpointException($"{source}: {name} must be a positive integer, not {value}.");
        }
    }
}
