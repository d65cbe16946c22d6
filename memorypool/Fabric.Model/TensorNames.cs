using System.Text.RegularExpressions;

namespace Fabric.Model;

/// <summary>
/// Tensor naming of the supported architectures. Mixtral: <c>model.layers.{L}.block_sparse_moe.experts.{E}.w1|w3|w2.weight</c>
/// (gate, up, down) and router <c>block_sparse_moe.gate.weight</c>; Qwen2-MoE and OLMoE:
/// <c>model.layers.{L}.mlp.experts.{E}.gate_proj|up_proj|down_proj.weight</c>, router <c>mlp.gate.weight</c>, and
/// Qwen2-MoE's shared expert <c>mlp.shared_expert.*_proj.weight</c> (gated by <c>mlp.shared_expert_gate.weight</c>);
/// Qwen3-MoE as Qwen2-MoE without shared expert; DeepSeek-V2's shared experts <c>mlp.shared_experts.*_proj.weight</c>;
/// a dense MLP layer's <c>mlp.gate_proj|up_proj|down_proj.weight</c>. Every dense tensor a family needs, with its
/// shape, is listed by <see cref="ModelLayout.DenseTensors"/>.
/// </summary>
public static partial class TensorNames
{
    /// <summary>The name of a routed expert's tensor in <paramref name="architecture"/>'s naming.</summary>
    public static string Expert(string architecture, int layer, int expert, ExpertProjection projection) =>
        architecture == Architectures.Mixtral
            ? $"model.layers.{layer}.block_sparse_moe.experts.{expert}.{MixtralWeight(projection)}.weight"
            : $"model.layers.{layer}.mlp.experts.{expert}.{ProjName(projection)}.weight";

    /// <summary>The router (gate) weight of <paramref name="layer"/>: [experts, hidden].</summary>
    public static string Router(string architecture, int layer) =>
        architecture == Architectures.Mixtral
            ? $"model.layers.{layer}.block_sparse_moe.gate.weight"
            : $"model.layers.{layer}.mlp.gate.weight";

    /// <summary>Qwen2-MoE's shared expert tensor of <paramref name="layer"/>.</summary>
    public static string SharedExpert(int layer, ExpertProjection projection) =>
        $"model.layers.{layer}.mlp.shared_expert.{ProjName(projection)}.weight";

    /// <summary>The always-on shared MLP tensor of sparse <paramref name="layer"/>: Qwen2-MoE's <c>shared_expert</c>, DeepSeek-V2's <c>shared_experts</c>.</summary>
    public static string SharedMlp(string architecture, int layer, ExpertProjection projection) =>
        architecture == Architectures.DeepseekV2
            ? $"model.layers.{layer}.mlp.shared_experts.{ProjName(projection)}.weight"
            : SharedExpert(layer, projection);

    /// <summary>Qwen2-MoE's shared expert gate of <paramref name="layer"/>: [1, hidden].</summary>
    public static string SharedExpertGate(int layer) => $"model.layers.{layer}.mlp.shared_expert_gate.weight";

    /// <summary>The MLP tensor of a dense (non-sparse) <paramref name="layer"/>.</summary>
    public static string DenseMlp(int layer, ExpertProjection projection) => $"model.layers.{layer}.mlp.{ProjName(projection)}.weight";

    /// <summary>Recognises a routed expert tensor name; false for every dense tensor.</summary>
    public static bool TryParseExpert(string name, out int layer, out int expert, out ExpertProjection projection)
    {
        var m = ExpertPattern().Match(name);
        layer = expert = 0;
        projection = default;
        if (!m.Success)
            return false;
        if (!int.TryParse(m.Groups["layer"].ValueSpan, out layer) || !int.TryParse(m.Groups["expert"].ValueSpan, out expert))
            return false;
        projection = m.Groups["proj"].Value switch
        {
            "w1" or "gate_proj" => ExpertProjection.Gate,
            "w3" or "up_proj" => ExpertProjection.Up,
            _ => ExpertProjection.Down,
        };
        return true;
    }

    /// <summary>Whether <paramref name="name"/> uses the expert naming of <paramref name="architecture"/>.</summary>
    public static bool IsNamingOf(string architecture, string name) =>
        architecture == Architectures.Mixtral ? name.Contains(".block_sparse_moe.", StringComparison.Ordinal) : name.Contains(".mlp.experts.", StringComparison.Ordinal);

    private static string MixtralWeight(ExpertProjection p) => p switch
    {
        ExpertProjection.Gate => "w1",
        ExpertProjection.Up => "w3",
        _ => "w2",
    };

    private static string ProjName(ExpertProjection p) => p switch
    {
        ExpertProjection.Gate => "gate_proj",
        ExpertProjection.Up => "up_proj",
        _ => "down_proj",
    };

    [GeneratedRegex(@"^model\.layers\.(?<layer>\d+)\.(?:block_sparse_moe\.experts\.(?<expert>\d+)\.(?<proj>w1|w2|w3)|mlp\.experts\.(?<expert>\d+)\.(?<proj>gate_proj|up_proj|down_proj))\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex ExpertPattern();
}
