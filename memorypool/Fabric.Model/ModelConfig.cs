using System.Text.Json.Serialization;
using MessagePack;

namespace Fabric.Model;

/// <summary>The model architectures Fabric reads, by their Hugging Face <c>model_type</c>.</summary>
public static class Architectures
{
    public const string Mixtral = "mixtral";
    public const string Qwen2Moe = "qwen2_moe";
    public const string Qwen3Moe = "qwen3_moe";
    public const string Olmoe = "olmoe";
    public const string DeepseekV2 = "deepseek_v2";

    /// <summary>Every architecture the checkpoint reader knows.</summary>
    public static IReadOnlyList<string> All { get; } = [Mixtral, Qwen2Moe, Qwen3Moe, Olmoe, DeepseekV2];
}

/// <summary>How an architecture normalises queries and keys before RoPE.</summary>
public enum QkNormKind
{
    /// <summary>No query/key norm (Mixtral, Qwen2-MoE).</summary>
    None,

    /// <summary>RMSNorm over each head's <c>head_dim</c> values (Qwen3-MoE's <c>q_norm</c>/<c>k_norm</c>).</summary>
    PerHead,

    /// <summary>RMSNorm over the whole projection width, before splitting into heads (OLMoE).</summary>
    FullWidth,
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
    /// <summary>The Hugging Face <c>model_type</c>: one of <see cref="Architectures.All"/>.</summary>
    [Key(0)][JsonPropertyName("architecture")] public string Architecture { get; init; } = Architectures.Mixtral;
    [Key(1)][JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    [Key(2)][JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }

    /// <summary>The FFN width of one routed expert (Qwen2/3-MoE's and DeepSeek-V2's <c>moe_intermediate_size</c>).</summary>
    [Key(3)][JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    [Key(4)][JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; }
    [Key(5)][JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; }
    [Key(6)][JsonPropertyName("num_key_value_heads")] public int NumKeyValueHeads { get; init; }
    [Key(7)][JsonPropertyName("head_dim")] public int HeadDim { get; init; }

    /// <summary>Routed experts per sparse layer (Qwen and OLMoE call it <c>num_experts</c>, DeepSeek <c>n_routed_experts</c>).</summary>
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

    /// <summary>Qwen2-MoE's q/k/v projection biases (always present there; Qwen3-MoE's <c>attention_bias</c> is refused).</summary>
    [Key(19)][JsonPropertyName("qkv_bias")] public bool QkvBias { get; init; }

    /// <summary>OLMoE's <c>clip_qkv</c>: queries, keys and values are clamped to ±this after the norms; 0 when null.</summary>
    [Key(20)][JsonPropertyName("clip_qkv")] public double ClipQkv { get; init; }

    /// <summary>Qwen's <c>decoder_sparse_step</c>: layer L is sparse when (L + 1) is a multiple of it (and L is not in <see cref="MlpOnlyLayers"/>).</summary>
    [Key(21)][JsonPropertyName("decoder_sparse_step")] public int DecoderSparseStep { get; init; } = 1;

    /// <summary>Qwen's <c>mlp_only_layers</c>: layers with a dense MLP instead of experts.</summary>
    [Key(22)][JsonPropertyName("mlp_only_layers")] public int[] MlpOnlyLayers { get; init; } = [];

    /// <summary>The FFN width of a dense MLP layer (<c>intermediate_size</c> of Qwen2/3-MoE and DeepSeek-V2); 0 when the model has none.</summary>
    [Key(23)][JsonPropertyName("dense_intermediate_size")] public int DenseIntermediateSize { get; init; }

    /// <summary>DeepSeek's <c>first_k_dense_replace</c>: the first k layers are dense.</summary>
    [Key(24)][JsonPropertyName("first_k_dense_replace")] public int FirstKDenseReplace { get; init; }

    /// <summary>DeepSeek's <c>moe_layer_freq</c>: layer L (≥ first_k_dense_replace) is sparse when L is a multiple of it.</summary>
    [Key(25)][JsonPropertyName("moe_layer_freq")] public int MoeLayerFreq { get; init; } = 1;

    /// <summary>DeepSeek's <c>n_shared_experts</c>: one always-on MLP of width <see cref="IntermediateSize"/> × this; 0 when null.</summary>
    [Key(26)][JsonPropertyName("n_shared_experts")] public int NumSharedExperts { get; init; }

    /// <summary>DeepSeek's <c>routed_scaling_factor</c>, applied to the routing weights when they are not renormalised.</summary>
    [Key(27)][JsonPropertyName("routed_scaling_factor")] public double RoutedScalingFactor { get; init; } = 1.0;

    /// <summary>DeepSeek's <c>topk_method</c>: "greedy" or "group_limited_greedy".</summary>
    [Key(28)][JsonPropertyName("topk_method")] public string TopkMethod { get; init; } = "greedy";

    /// <summary>DeepSeek's <c>n_group</c> (group-limited routing: experts in this many equal groups); 0 when null.</summary>
    [Key(29)][JsonPropertyName("n_group")] public int NGroup { get; init; }

    /// <summary>DeepSeek's <c>topk_group</c>: groups a token may route into; 0 when null.</summary>
    [Key(30)][JsonPropertyName("topk_group")] public int TopkGroup { get; init; }

    /// <summary>DeepSeek's <c>q_lora_rank</c>: queries through a low-rank down/up projection of this width; 0 when null (one q_proj).</summary>
    [Key(31)][JsonPropertyName("q_lora_rank")] public int QLoraRank { get; init; }

    /// <summary>DeepSeek's <c>kv_lora_rank</c>: width of the compressed KV latent the cache holds.</summary>
    [Key(32)][JsonPropertyName("kv_lora_rank")] public int KvLoraRank { get; init; }

    /// <summary>DeepSeek's <c>qk_nope_head_dim</c>: per-head query/key width without RoPE.</summary>
    [Key(33)][JsonPropertyName("qk_nope_head_dim")] public int QkNopeHeadDim { get; init; }

    /// <summary>DeepSeek's <c>qk_rope_head_dim</c>: per-head query/key width with RoPE (the key part is shared by all heads).</summary>
    [Key(34)][JsonPropertyName("qk_rope_head_dim")] public int QkRopeHeadDim { get; init; }

    /// <summary>DeepSeek's <c>v_head_dim</c>: per-head value width.</summary>
    [Key(35)][JsonPropertyName("v_head_dim")] public int VHeadDim { get; init; }

    /// <summary>True for multi-head latent attention (DeepSeek-V2).</summary>
    [IgnoreMember][JsonIgnore] public bool UsesLatentAttention => Architecture == Architectures.DeepseekV2;

    /// <summary>How queries and keys are normalised before RoPE.</summary>
    [IgnoreMember][JsonIgnore] public QkNormKind QkNorm => Architecture switch
    {
        Architectures.Qwen3Moe => QkNormKind.PerHead,
        Architectures.Olmoe => QkNormKind.FullWidth,
        _ => QkNormKind.None,
    };

    /// <summary>The width of the always-on shared MLP of a sparse layer (Qwen2-MoE's shared expert, DeepSeek's shared experts); 0 when none.</summary>
    [IgnoreMember][JsonIgnore] public int SharedMlpWidth => Architecture switch
    {
        Architectures.Qwen2Moe => SharedExpertIntermediateSize,
        Architectures.DeepseekV2 => NumSharedExperts * IntermediateSize,
        _ => 0,
    };

    /// <summary>Whether the shared MLP's output passes through a sigmoid gate (Qwen2-MoE's <c>shared_expert_gate</c>).</summary>
    [IgnoreMember][JsonIgnore] public bool SharedMlpGated => Architecture == Architectures.Qwen2Moe && SharedExpertIntermediateSize > 0;

    /// <summary>Whether model layer <paramref name="layer"/> has routed experts (false: a dense MLP layer), as each family's modeling code decides.</summary>
    public bool IsSparseLayer(int layer) => Architecture switch
    {
        Architectures.Qwen2Moe or Architectures.Qwen3Moe => Array.IndexOf(MlpOnlyLayers, layer) < 0 && DecoderSparseStep > 0 && (layer + 1) % DecoderSparseStep == 0,
        Architectures.DeepseekV2 => layer >= FirstKDenseReplace && MoeLayerFreq > 0 && layer % MoeLayerFreq == 0,
        _ => true,
    };

    /// <summary>
    /// The expert layer of model layer <paramref name="layer"/>: its index among the sparse layers (the layer an
    /// <c>ExpertKey</c>, the pool catalog and routing traces use), or -1 for a dense layer.
    /// </summary>
    public int ExpertLayerOf(int layer)
    {
        if (!IsSparseLayer(layer))
            return -1;
        var index = 0;
        for (var l = 0; l < layer; l++)
        {
            if (IsSparseLayer(l))
                index++;
        }
        return index;
    }

    /// <summary>Layers with routed experts; equal to <see cref="NumHiddenLayers"/> unless some layers are dense.</summary>
    [IgnoreMember][JsonIgnore] public int ExpertLayers
    {
        get
        {
            var count = 0;
            for (var l = 0; l < NumHiddenLayers; l++)
            {
                if (IsSparseLayer(l))
                    count++;
            }
            return count;
        }
    }

    /// <summary>DeepSeek's per-head query/key width: <see cref="QkNopeHeadDim"/> + <see cref="QkRopeHeadDim"/>.</summary>
    [IgnoreMember][JsonIgnore] public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    /// <summary>Floats the KV cache holds per (layer, position): MLA's latent plus rope key, else keys and values of every KV head.</summary>
    [IgnoreMember][JsonIgnore] public int KvFloatsPerLayerPosition => UsesLatentAttention ? KvLoraRank + QkRopeHeadDim : 2 * NumKeyValueHeads * HeadDim;

    /// <summary>Routed expert tensors per expert: gate, up and down each hold <see cref="IntermediateSize"/> × <see cref="HiddenSize"/> elements.</summary>
    [IgnoreMember][JsonIgnore] public long ExpertElements => 3L * IntermediateSize * HiddenSize;

    /// <summary>Bytes of one routed expert (gate + up + down) in <see cref="Dtype"/>.</summary>
    [IgnoreMember][JsonIgnore] public long ExpertBytes => ExpertElements * Dtype.ByteSize();

    /// <summary>Routed experts in the whole model (sparse layers × experts per layer).</summary>
    [IgnoreMember][JsonIgnore] public int TotalExperts => ExpertLayers * NumLocalExperts;

    /// <summary>Value equality over every field, <see cref="MlpOnlyLayers"/> by its elements (as the catalog and traces carry it).</summary>
    public bool Equals(ModelConfig? other) =>
        other is not null && (ReferenceEquals(this, other) || MessagePackSerializer.Serialize(this).AsSpan().SequenceEqual(MessagePackSerializer.Serialize(other)));

    public override int GetHashCode() => HashCode.Combine(Architecture, VocabSize, HiddenSize, IntermediateSize, NumHiddenLayers, NumLocalExperts, NumExpertsPerTok);

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
        if (SlidingWindow > 0)
            throw new CheckpointException($"{source}: sliding_window ({SlidingWindow}) is set, and Fabric implements full attention only.");
        if (ClipQkv < 0)
            throw new CheckpointException($"{source}: clip_qkv must be positive or null, not {ClipQkv}.");
        if (ExpertLayers == 0)
            throw new CheckpointException($"{source}: no layer has routed experts (decoder_sparse_step, mlp_only_layers, first_k_dense_replace or moe_layer_freq leave every layer dense).");
        if (ExpertLayers < NumHiddenLayers)
            Positive(DenseIntermediateSize, "intermediate_size");
        if (UsesLatentAttention)
        {
            Positive(KvLoraRank, "kv_lora_rank");
            Positive(QkNopeHeadDim, "qk_nope_head_dim");
            Positive(QkRopeHeadDim, "qk_rope_head_dim");
            Positive(VHeadDim, "v_head_dim");
            if (QkRopeHeadDim % 2 != 0)
                throw new CheckpointException($"{source}: qk_rope_head_dim must be even, not {QkRopeHeadDim}.");
            if (QLoraRank < 0)
                throw new CheckpointException($"{source}: q_lora_rank must be positive or null, not {QLoraRank}.");
            if (TopkMethod is not ("greedy" or "group_limited_greedy"))
                throw new CheckpointException($"{source}: topk_method '{TopkMethod}' is not one Fabric implements (greedy, group_limited_greedy).");
            if (TopkMethod == "group_limited_greedy")
            {
                Positive(NGroup, "n_group");
                Positive(TopkGroup, "topk_group");
                if (NumLocalExperts % NGroup != 0 || TopkGroup > NGroup || NumExpertsPerTok > TopkGroup * (NumLocalExperts / NGroup))
                    throw new CheckpointException($"{source}: n_group ({NGroup}) must divide n_routed_experts ({NumLocalExperts}), topk_group ({TopkGroup}) must not exceed it, and the chosen groups must hold num_experts_per_tok ({NumExpertsPerTok}) experts.");
            }
        }
        else if (HeadDim % 2 != 0)
        {
            throw new CheckpointException($"{source}: head_dim must be even for RoPE, not {HeadDim}.");
        }

        void Positive(int value, string name)
        {
            if (value <= 0)
                throw new CheckpointException($"{source}: {name} must be a positive integer, not {value}.");
        }
    }
}
