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

    /// <summary>The preset called <paramref name="name"/> in <paramref name="dtype"/>; an unknown name throws <see cref="CheckpointException"/>.</summary>
    public static ModelConfig Get(string name, TensorDtype dtype = TensorDtype.BF16) => (name.ToLowerInvariant() switch
    {
        "tiny" => Tiny,
        "small" => Small,
        "medium" => Medium,
        _ => throw new CheckpointException($"There is no model preset named '{name}'; choose tiny, small or medium."),
    }) with { Dtype = dtype };
}
