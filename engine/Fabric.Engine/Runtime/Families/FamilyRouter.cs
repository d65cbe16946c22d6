using System.Runtime.InteropServices;
using Fabric.Engine.Device;
using Fabric.Model;

namespace Fabric.Engine.Runtime.Families;

/// <summary>
/// The routing step of each family, from router logits to (expert, weight) pairs: softmax in fp32, then
/// <list type="bullet">
/// <item>Mixtral, and Qwen/OLMoE with <c>norm_topk_prob</c>: top-k renormalised to sum 1 (the device's <see cref="IComputeDevice.RouterTopK"/>);</item>
/// <item>Qwen/OLMoE without it: the top-k probabilities as they are;</item>
/// <item>DeepSeek-V2 (<c>MoEGate</c>): greedy top-k, or with <c>group_limited_greedy</c> top-k among the experts of the
/// <c>topk_group</c> groups with the highest best score (the rest masked to 0); then, when top-k &gt; 1 and
/// <c>norm_topk_prob</c>, divided by their sum + 1e-20, else multiplied by <c>routed_scaling_factor</c>.</item>
/// </list>
/// The variants other than the first route on the host after downloading the logits (rows × experts floats).
/// </summary>
public sealed class FamilyRouter
{
    private readonly ModelConfig _c;
    private readonly float[] _logits;
    private readonly float[] _scores;
    private readonly float[] _groupScores;
    private readonly bool[] _groupChosen;

    public FamilyRouter(ModelConfig c, int maxRows)
    {
        _c = c;
        _logits = new float[(long)maxRows * c.NumLocalExperts];
        _scores = new float[c.NumLocalExperts];
        _groupScores = new float[Math.Max(1, c.NGroup)];
        _groupChosen = new bool[Math.Max(1, c.NGroup)];
    }

    /// <summary>Whether <paramref name="c"/>'s routing is the device's softmax → top-k → renormalise.</summary>
    public static bool OnDevice(ModelConfig c) => c.NormTopKProb && !c.UsesLatentAttention;

    /// <summary>Routes <paramref name="rows"/> rows of <paramref name="logits"/> ([rows, experts] on the device) into indices and weights ([rows, topK]).</summary>
    public void Route(IComputeDevice device, DeviceBuffer logits, int rows, Span<int> indices, Span<float> weights)
    {
        var experts = _c.NumLocalExperts;
        if (OnDevice(_c))
        {
            device.RouterTopK(logits, rows, experts, _c.NumExpertsPerTok, indices, weights);
            return;
        }
        var host = _logits.AsSpan(0, rows * experts);
        device.Download(logits, 0, MemoryMarshal.AsBytes(host));
        Route(host, rows, indices, weights);
    }

    /// <summary>The host routing of <paramref name="rows"/> rows of <paramref name="logits"/>.</summary>
    public void Route(ReadOnlySpan<float> logits, int rows, Span<int> indices, Span<float> weights)
    {
        var c = _c;
        var experts = c.NumLocalExperts;
        var topK = c.NumExpertsPerTok;
        var p = _scores.AsSpan();
        for (var r = 0; r < rows; r++)
        {
            Routing.Softmax(logits.Slice(r * experts, experts), p);
            if (c.UsesLatentAttention && c.TopkMethod == "group_limited_greedy")
                MaskGroups(p);
            var chosen = Routing.TakeTopK(p, topK, indices.Slice(r * topK, topK), weights.Slice(r * topK, topK));
            var scale = 1f;
            if (c.UsesLatentAttention)
                scale = topK > 1 && c.NormTopKProb ? 1f / (chosen + 1e-20f) : (float)c.RoutedScalingFactor;
            else if (c.NormTopKProb)
                scale = 1f / chosen;
            for (var j = 0; j < topK; j++)
                weights[(r * topK) + j] *= scale;
        }
    }

    /// <summary>group_limited_greedy: keep the topk_group groups whose best score is highest (ties to the lower group); zero the rest.</summary>
    private void MaskGroups(Span<float> p)
    {
        var groups = _c.NGroup;
        var size = _c.NumLocalExperts / groups;
        for (var g = 0; g < groups; g++)
        {
            var best = float.NegativeInfinity;
            for (var e = g * size; e < (g + 1) * size; e++)
                best = MathF.Max(best, p[e]);
            _groupScores[g] = best;
            _groupChosen[g] = false;
        }
        for (var k = 0; k < _c.TopkGroup; k++)
        {
            var pick = -1;
            for (var g = 0; g < groups; g++)
            {
                if (!_groupChosen[g] && (pick < 0 || _groupScores[g] > _groupScores[pick]))
                    pick = g;
            }
            _groupChosen[pick] = true;
        }
        for (var g = 0; g < groups; g++)
        {
            if (!_groupChosen[g])
                p.Slice(g * size, size).Clear();
        }
    }
}
