namespace Fabric.Model;

/// <summary>The generator's model sizes: tiny (unit tests, seconds), small (about 100 MB in bf16), medium (about 2 GB in bf16).</summary>
public static class ModelPresets
{
    /// <summary>4 layers × 8 experts, top-2, hidden 64: about 2 MB in bf16.</summary>
    public static ModelConfig Tiny { get; } = new()
    {
        Architecture = Architectures.Mixtral,
        VocabSize = 256,
        HiddenSize = 64,
        IntermediateSize = 128,
        NumHiddenLayers = 4,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        HeadDim = 16,
        NumLocalExperts = 8,
        NumExpertsPerTok = 2,
        MaxPositionEmbeddings = 512,
        RopeTheta = 1e6,
        RmsNormEps = 1e-5,
    };

    /// <summary>4 layers × 8 experts, top-2, hidden 512, expert width 1024: about 110 MB in bf16.</summary>
    public static ModelConfig Small { get; } = Tiny with
    {
        VocabSize = 4096,
        HiddenSize = 512,
        IntermediateSize = 1024,
        NumAttentionHeads = 8,
        NumKeyValueHeads = 4,
        HeadDim = 64,
        MaxPositionEmbeddings = 4096,
    };

    /// <summary>6 layers × 32 experts, top-2, hidden 1024, expert width 1536: about 2.0 GB in bf16.</summary>
    public static ModelConfig Medium { get; } = Tiny with
    {
        VocabSize = 32000,
        HiddenSize = 1024,
        IntermediateSize = 1536,
        NumHiddenLayers = 6,
        NumAttentionHeads = 16,
        NumKeyValueHeads = 4,
        HeadDim = 64,
        NumLocalExperts = 32,
        MaxPositionEmbeddings = 4096,
    };

    /// <summary>The preset names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["tiny", "small", "medium"];

    /// <summary>
    /// The preset called <paramref name="name"/> of <paramref name="family"/> (a <c>model_type</c>) in
    /// <paramref name="dtype"/>; an unknown name or family throws <see cref="CheckpointException"/>. Every family's
    /// presets keep the structure of its released checkpoints (Qwen1.5-MoE-A2.7B, Qwen3-30B-A3B, OLMoE-1B-7B,
    /// DeepSeek-V2-Lite) at the Mixtral preset's scale.
    /// </summary>
    public static ModelConfig Get(string name, TensorDtype dtype = TensorDtype.BF16, string family = Architectures.Mixtral)
    {
        var size = name.ToLowerInvariant() switch
        {
            "tiny" => 0,
            "small" => 1,
            "medium" => 2,
            _ => throw new CheckpointException($"There is no model preset named '{name}'; choose tiny, small or medium."),
        };
        var baseline = size switch
        {
            0 => Tiny,
            1 => Small,
            _ => Medium,
        };
        var config = family switch
        {
            Architectures.Mixtral => baseline,
            Architectures.Qwen2Moe => Qwen2Moe(baseline),
            Architectures.Qwen3Moe => Qwen3Moe(baseline),
            Architectures.Olmoe => Olmoe(baseline),
            Architectures.DeepseekV2 => DeepseekV2(baseline),
            _ => throw new CheckpointException($"There is no model family '{family}'; choose {string.Join(", ", Architectures.All)}."),
        };
        return config with { Dtype = dtype };
    }

    /// <summary>Qwen1.5-MoE's structure: MHA with q/k/v biases, half-width routed experts, a gated shared expert of 4 expert widths, top-k not renormalised.</summary>
    private static ModelConfig Qwen2Moe(ModelConfig b) => b with
    {
        Architecture = Architectures.Qwen2Moe,
        NumKeyValueHeads = b.NumAttentionHeads,
        IntermediateSize = b.IntermediateSize / 2,
        DenseIntermediateSize = b.IntermediateSize * 2,
        SharedExpertIntermediateSize = b.IntermediateSize * 2,
        NumExpertsPerTok = b.NumExpertsPerTok * 2,
        QkvBias = true,
        NormTopKProb = false,
        RmsNormEps = 1e-6,
    };

    /// <summary>Qwen3-MoE's structure: GQA, head_dim wider than hidden / heads, per-head q/k norms, no bias, no shared expert, top-k renormalised.</summary>
    private static ModelConfig Qwen3Moe(ModelConfig b) => b with
    {
        Architecture = Architectures.Qwen3Moe,
        HeadDim = b.HeadDim * 2,
        IntermediateSize = b.IntermediateSize / 2,
        DenseIntermediateSize = b.IntermediateSize * 2,
        NumLocalExperts = b.NumLocalExperts * 2,
        NumExpertsPerTok = b.NumExpertsPerTok * 2,
        NormTopKProb = true,
        RmsNormEps = 1e-6,
    };

    /// <summary>OLMoE's structure: MHA, q/k norms over the whole projection width, top-k not renormalised.</summary>
    private static ModelConfig Olmoe(ModelConfig b) => b with
    {
        Architecture = Architectures.Olmoe,
        NumKeyValueHeads = b.NumAttentionHeads,
        HeadDim = b.HiddenSize / b.NumAttentionHeads,
        IntermediateSize = b.IntermediateSize / 2,
        NumLocalExperts = b.NumLocalExperts * 2,
        NumExpertsPerTok = b.NumExpertsPerTok * 2,
        NormTopKProb = false,
        RopeTheta = 10000,
    };

    /// <summary>DeepSeek-V2-Lite's structure: MLA without q LoRA, the first layer dense, 2 shared experts, greedy softmax routing.</summary>
    private static ModelConfig DeepseekV2(ModelConfig b) => b with
    {
        Architecture = Architectures.DeepseekV2,
        NumKeyValueHeads = b.NumAttentionHeads,
        KvLoraRank = b.HiddenSize / 2,
        QkNopeHeadDim = b.HeadDim,
        QkRopeHeadDim = b.HeadDim / 2,
        VHeadDim = b.HeadDim,
        HeadDim = b.HeadDim + (b.HeadDim / 2),
        IntermediateSize = b.IntermediateSize / 4,
        DenseIntermediateSize = b.IntermediateSize * 2,
        NumSharedExperts = 2,
        NumLocalExperts = b.NumLocalExperts * 2,
        NumExpertsPerTok = b.NumExpertsPerTok * 3,
        FirstKDenseReplace = 1,
        TopkMethod = "greedy",
        NormTopKProb = false,
        RoutedScalingFactor = 1.0,
        RmsNormEps = 1e-6,
        RopeTheta = 10000,
    };
}
