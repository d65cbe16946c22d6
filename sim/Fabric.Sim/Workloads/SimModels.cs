using Fabric.Model;
using Fabric.Sim.Topology;

namespace Fabric.Sim.Workloads;

/// <summary>Model shapes by name: the pool's generator presets plus published shapes for sizing studies.</summary>
public static class SimModels
{
    /// <summary>Mixtral-8x7B as its config.json on the Hugging Face hub states (mistralai/Mixtral-8x7B-v0.1).</summary>
    public static ModelConfig Mixtral8x7B { get; } = new()
    {
        Architecture = Architectures.Mixtral,
        VocabSize = 32000,
        HiddenSize = 4096,
        IntermediateSize = 14336,
        NumHiddenLayers = 32,
        NumAttentionHeads = 32,
        NumKeyValueHeads = 8,
        HeadDim = 128,
        NumLocalExperts = 8,
        NumExpertsPerTok = 2,
        MaxPositionEmbeddings = 32768,
        Dtype = TensorDtype.BF16,
    };

    /// <summary>A 32-layer, 64-expert, top-4 model (DeepSeekMoE-like expert width 1408, hidden 4096): the scale benchmark.</summary>
    public static ModelConfig Moe32x64 { get; } = Mixtral8x7B with
    {
        IntermediateSize = 1408,
        NumLocalExperts = 64,
        NumExpertsPerTok = 4,
    };

    /// <summary>DeepSeek-V2-Lite as its config.json states (deepseek-ai/DeepSeek-V2-Lite): MLA, the first layer dense, 64 routed + 2 shared experts, top-6.</summary>
    public static ModelConfig DeepseekV2Lite { get; } = new()
    {
        Architecture = Architectures.DeepseekV2,
        VocabSize = 102400,
        HiddenSize = 2048,
        IntermediateSize = 1408,
        DenseIntermediateSize = 10944,
        NumHiddenLayers = 27,
        NumAttentionHeads = 16,
        NumKeyValueHeads = 16,
        HeadDim = 192,
        NumLocalExperts = 64,
        NumExpertsPerTok = 6,
        NumSharedExperts = 2,
        FirstKDenseReplace = 1,
        KvLoraRank = 512,
        QkNopeHeadDim = 128,
        QkRopeHeadDim = 64,
        VHeadDim = 128,
        RmsNormEps = 1e-6,
        RopeTheta = 10000,
        MaxPositionEmbeddings = 163840,
        Dtype = TensorDtype.BF16,
    };

    public static IReadOnlyList<string> Names { get; } = ["tiny", "small", "medium", "mixtral-8x7b", "moe-32x64", "deepseek-v2-lite"];

    /// <summary>A preset by name, or the config.json at <paramref name="nameOrPath"/> (relative to <paramref name="baseDirectory"/>).</summary>
    public static ModelConfig Resolve(string nameOrPath, string baseDirectory)
    {
        switch (nameOrPath.ToLowerInvariant())
        {
            case "mixtral-8x7b":
                return Mixtral8x7B;
            case "moe-32x64":
                return Moe32x64;
            case "deepseek-v2-lite":
                return DeepseekV2Lite;
            case "tiny" or "small" or "medium":
                return ModelPresets.Get(nameOrPath);
        }
        var path = Path.IsPathRooted(nameOrPath) ? nameOrPath : Path.Combine(baseDirectory, nameOrPath);
        if (Directory.Exists(path))
            path = Path.Combine(path, "config.json");
        if (!File.Exists(path))
            throw new TopologyException($"The model '{nameOrPath}' is neither a preset ({string.Join(", ", Names)}) nor a config.json that exists.");
        return ModelConfigReader.Load(path);
    }
}
