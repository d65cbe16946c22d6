using Fabric.Model;

namespace Fabric.Engine.Tests.Forward;

/// <summary>
/// An independent, straightforward Mixtral forward pass for the tests: plain loops, fp64 everywhere, weights read
/// from the safetensors file, no KV cache (it recomputes the whole sequence). Hugging Face's MixtralForCausalLM math.
/// </summary>
internal sealed class ReferenceModel
{
    private readonly Checkpoint _checkpoint;
    private readonly ModelConfig _c;
    private readonly Dictionary<string, double[]> _cache = [];

    public ReferenceModel(string directory)
    {
        _checkpoint = Checkpoint.Open(directory);
        _c = _checkpoint.Config;
    }

    /// <summary>The logits of every position of <paramref name="tokens"/> ([positions][vocab]).</summary>
    public double[][] Logits(int[] tokens)
    {
        var c = _c;
        var n = tokens.Length;
        var hSize = c.HiddenSize;
        var embed = Tensor("model.embed_tokens.weight");
        var h = new double[n][];
        for (var t = 0; t < n; t++)
            h[t] = embed.AsSpan(tokens[t] * hSize, hSize).ToArray();
        for (var l = 0; l < c.NumHiddenLayers; l++)
        {
            var p = $"model.layers.{l}.";
            var x = h.Select(r => RmsNorm(r, Tensor(p + "input_layernorm.weight"))).ToArray();
            var q = x.Select(r => Linear(Tensor(p + "self_attn.q_proj.weight"), r)).ToArray();
            var k = x.Select(r => Linear(Tensor(p + "self_attn.k_proj.weight"), r)).ToArray();
            var v = x.Select(r => Linear(Tensor(p + "self_attn.v_proj.weight"), r)).ToArray();
            for (var t = 0; t < n; t++)
            {
                Rope(q[t], c.NumAttentionHeads, t);
                Rope(k[t], c.NumKeyValueHeads, t);
            }
            var attn = new double[n][];
            var d = c.HeadDim;
            var group = c.NumAttentionHeads / c.NumKeyValueHeads;
            for (var t = 0; t < n; t++)
            {
                attn[t] = new double[c.NumAttentionHeads * d];
                for (var head = 0; head < c.NumAttentionHeads; head++)
                {
                    var kvh = head / group;
                    var scores = new double[t + 1];
                    for (var s = 0; s <= t; s++)
                    {
                        double dot = 0;
                        for (var i = 0; i < d; i++)
                            dot += q[t][(head * d) + i] * k[s][(kvh * d) + i];
                        scores[s] = dot / Math.Sqrt(d);
                    }
                    var max = scores.Max();
                    var sum = scores.Sum(z => Math.Exp(z - max));
                    for (var s = 0; s <= t; s++)
                    {
                        var w = Math.Exp(scores[s] - max) / sum;
                        for (var i = 0; i < d; i++)
                            attn[t][(head * d) + i] += w * v[s][(kvh * d) + i];
                    }
                }
            }
            for (var t = 0; t < n; t++)
            {
                var o = Linear(Tensor(p + "self_attn.o_proj.weight"), attn[t]);
                for (var i = 0; i < hSize; i++)
                    h[t][i] += o[i];
            }
            for (var t = 0; t < n; t++)
            {
                var xm = RmsNorm(h[t], Tensor(p + "post_attention_layernorm.weight"));
                var logits = Linear(Tensor(TensorNames.Router(c.Architecture, l)), xm);
                var max = logits.Max();
                var probs = logits.Select(z => Math.Exp(z - max)).ToArray();
                var total = probs.Sum();
                var top = Enumerable.Range(0, probs.Length).OrderByDescending(e => probs[e]).ThenBy(e => e).Take(c.NumExpertsPerTok).ToArray();
                var chosen = top.Sum(e => probs[e] / total);
                foreach (var e in top)
                {
                    var weight = probs[e] / total / chosen;
                    var gate = Linear(Expert(l, e, ExpertProjection.Gate), xm);
                    var up = Linear(Expert(l, e, ExpertProjection.Up), xm);
                    for (var i = 0; i < gate.Length; i++)
                        gate[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
                    var down = Linear(Expert(l, e, ExpertProjection.Down), gate);
                    for (var i = 0; i < hSize; i++)
                        h[t][i] += weight * down[i];
                }
            }
        }
        var lmHead = _checkpoint.FindDense("lm_head.weight") is null ? Tensor("model.embed_tokens.weight") : Tensor("lm_head.weight");
        return h.Select(r => Linear(lmHead, RmsNorm(r, Tensor("model.norm.weight")))).ToArray();
    }

    private double[] RmsNorm(double[] x, double[] w)
    {
        var mean = x.Sum(z => z * z) / x.Length;
        var scale = 1 / Math.Sqrt(mean + _c.RmsNormEps);
        return x.Select((z, i) => z * scale * w[i]).ToArray();
    }

    private static double[] Linear(double[] w, double[] x)
    {
        var outDim = w.Length / x.Length;
        var y = new double[outDim];
        for (var o = 0; o < outDim; o++)
        {
            double s = 0;
            for (var i = 0; i < x.Length; i++)
                s += w[(o * x.Length) + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    private void Rope(double[] x, int heads, int position)
    {
        var d = _c.HeadDim;
        var half = d / 2;
        for (var head = 0; head < heads; head++)
        {
            for (var i = 0; i < half; i++)
            {
                var angle = position / Math.Pow(_c.RopeTheta, 2.0 * i / d);
                var a = x[(head * d) + i];
                var b = x[(head * d) + i + half];
                x[(head * d) + i] = (a * Math.Cos(angle)) - (b * Math.Sin(angle));
                x[(head * d) + i + half] = (b * Math.Cos(angle)) + (a * Math.Sin(angle));
            }
        }
    }

    private double[] Expert(int layer, int expert, ExpertProjection projection) => Load(_checkpoint[layer, expert][projection]);

    private double[] Tensor(string name) => Load(_checkpoint.FindDense(name) ?? throw new InvalidOperationException($"no tensor {name}"));

    private double[] Load(TensorEntry t)
    {
        if (_cache.TryGetValue(t.Name, out var cached))
            return cached;
        var bytes = new byte[t.Length];
        using (var f = File.OpenRead(t.File))
        {
            f.Position = t.Offset;
            f.ReadExactly(bytes);
        }
        var floats = new float[t.Elements];
        WeightEncoding.Decode(bytes, t.Dtype, floats);
        return _cache[t.Name] = floats.Select(z => (double)z).ToArray();
    }
}
