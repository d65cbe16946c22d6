using Fabric.Model;

namespace Fabric.Engine.Tests.Forward;

/// <summary>
/// An independent forward pass of every family for the tests: plain loops, fp64 everywhere, weights read from the
/// safetensors files by their Hugging Face names, no KV cache (the whole sequence is recomputed), written from
/// transformers' <c>modeling_mixtral.py</c>, <c>modeling_qwen2_moe.py</c>, <c>modeling_qwen3_moe.py</c>,
/// <c>modeling_olmoe.py</c> and DeepSeek-V2's <c>modeling_deepseek.py</c>. MLA is computed the way HF does it: every
/// position's keys and values expanded from the latent by kv_b_proj, RoPE after the de-interleave permutation.
/// </summary>
internal sealed class FamilyReferenceModel
{
    private readonly Checkpoint _checkpoint;
    private readonly ModelConfig _c;
    private readonly Dictionary<string, double[]> _cache = [];
    private readonly Dictionary<string, TensorEntry> _byName;

    public FamilyReferenceModel(string directory)
    {
        _checkpoint = Checkpoint.Open(directory);
        _c = _checkpoint.Config;
        _byName = _checkpoint.Files.SelectMany(f => f.Tensors).GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.First());
    }

    /// <summary>Whether layer <paramref name="l"/> is sparse, from the config fields as each modeling file decides it.</summary>
    private bool Sparse(int l) => _c.Architecture switch
    {
        "qwen2_moe" or "qwen3_moe" => !_c.MlpOnlyLayers.Contains(l) && (l + 1) % _c.DecoderSparseStep == 0,
        "deepseek_v2" => l >= _c.FirstKDenseReplace && l % _c.MoeLayerFreq == 0,
        _ => true,
    };

    /// <summary>Greedy continuation of <paramref name="prompt"/> by <paramref name="count"/> tokens (ties to the lower id).</summary>
    public int[] Greedy(int[] prompt, int count)
    {
        var sequence = prompt.ToList();
        var result = new List<int>();
        for (var i = 0; i < count; i++)
        {
            var last = Logits([.. sequence])[^1];
            var best = 0;
            for (var v = 1; v < last.Length; v++)
            {
                if (last[v] > last[best])
                    best = v;
            }
            result.Add(best);
            sequence.Add(best);
        }
        return [.. result];
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
            var attn = c.Architecture == "deepseek_v2" ? Mla(x, p + "self_attn.") : Gqa(x, p + "self_attn.");
            for (var t = 0; t < n; t++)
            {
                var o = Linear(Tensor(p + "self_attn.o_proj.weight"), attn[t]);
                for (var i = 0; i < hSize; i++)
                    h[t][i] += o[i];
            }
            for (var t = 0; t < n; t++)
            {
                var xm = RmsNorm(h[t], Tensor(p + "post_attention_layernorm.weight"));
                var add = Sparse(l) ? SparseMoe(xm, l, p) : Mlp(xm, p + "mlp.");
                for (var i = 0; i < hSize; i++)
                    h[t][i] += add[i];
            }
        }
        var lmHead = _byName.ContainsKey("lm_head.weight") ? Tensor("lm_head.weight") : Tensor("model.embed_tokens.weight");
        return h.Select(r => Linear(lmHead, RmsNorm(r, Tensor("model.norm.weight")))).ToArray();
    }

    private double[][] Gqa(double[][] x, string p)
    {
        var c = _c;
        var n = x.Length;
        var d = c.HeadDim;
        var heads = c.NumAttentionHeads;
        var kvHeads = c.NumKeyValueHeads;
        var q = x.Select(r => Linear(Tensor(p + "q_proj.weight"), r)).ToArray();
        var k = x.Select(r => Linear(Tensor(p + "k_proj.weight"), r)).ToArray();
        var v = x.Select(r => Linear(Tensor(p + "v_proj.weight"), r)).ToArray();
        if (c.Architecture == "qwen2_moe")
        {
            AddInPlace(q, Tensor(p + "q_proj.bias"));
            AddInPlace(k, Tensor(p + "k_proj.bias"));
            AddInPlace(v, Tensor(p + "v_proj.bias"));
        }
        if (c.Architecture == "qwen3_moe")
        {
            // Qwen3MoeAttention: q_norm / k_norm on q.view(..., head_dim), per head.
            q = q.Select(r => PerHeadNorm(r, heads, d, Tensor(p + "q_norm.weight"))).ToArray();
            k = k.Select(r => PerHeadNorm(r, kvHeads, d, Tensor(p + "k_norm.weight"))).ToArray();
        }
        if (c.Architecture == "olmoe")
        {
            // OlmoeAttention: q_norm(q_proj(x)), k_norm(k_proj(x)) over the whole width, then clamp q, k, v.
            q = q.Select(r => RmsNorm(r, Tensor(p + "q_norm.weight"))).ToArray();
            k = k.Select(r => RmsNorm(r, Tensor(p + "k_norm.weight"))).ToArray();
            if (c.ClipQkv > 0)
            {
                foreach (var a in q.Concat(k).Concat(v))
                {
                    for (var i = 0; i < a.Length; i++)
                        a[i] = Math.Clamp(a[i], -c.ClipQkv, c.ClipQkv);
                }
            }
        }
        for (var t = 0; t < n; t++)
        {
            for (var head = 0; head < heads; head++)
                RotateHalf(q[t], (head * d), d, t);
            for (var head = 0; head < kvHeads; head++)
                RotateHalf(k[t], (head * d), d, t);
        }
        var group = heads / kvHeads;
        var attn = new double[n][];
        for (var t = 0; t < n; t++)
        {
            attn[t] = new double[heads * d];
            for (var head = 0; head < heads; head++)
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
                var w = Softmax(scores);
                for (var s = 0; s <= t; s++)
                {
                    for (var i = 0; i < d; i++)
                        attn[t][(head * d) + i] += w[s] * v[s][(kvh * d) + i];
                }
            }
        }
        return attn;
    }

    /// <summary>DeepseekV2Attention as HF computes it (no absorption): explicit per-head keys and values from the latent.</summary>
    private double[][] Mla(double[][] x, string p)
    {
        var c = _c;
        var n = x.Length;
        var heads = c.NumAttentionHeads;
        var nope = c.QkNopeHeadDim;
        var rope = c.QkRopeHeadDim;
        var vd = c.VHeadDim;
        var rank = c.KvLoraRank;
        var qHead = nope + rope;
        var q = c.QLoraRank > 0
            ? x.Select(r => Linear(Tensor(p + "q_b_proj.weight"), RmsNorm(Linear(Tensor(p + "q_a_proj.weight"), r), Tensor(p + "q_a_layernorm.weight")))).ToArray()
            : x.Select(r => Linear(Tensor(p + "q_proj.weight"), r)).ToArray();
        var compressed = x.Select(r => Linear(Tensor(p + "kv_a_proj_with_mqa.weight"), r)).ToArray();
        var kNope = new double[n][];
        var values = new double[n][];
        var kPe = new double[n][];
        for (var t = 0; t < n; t++)
        {
            var latent = RmsNorm(compressed[t][..rank], Tensor(p + "kv_a_layernorm.weight"));
            var kv = Linear(Tensor(p + "kv_b_proj.weight"), latent);
            kNope[t] = new double[heads * nope];
            values[t] = new double[heads * vd];
            for (var head = 0; head < heads; head++)
            {
                Array.Copy(kv, head * (nope + vd), kNope[t], head * nope, nope);
                Array.Copy(kv, (head * (nope + vd)) + nope, values[t], head * vd, vd);
            }
            kPe[t] = compressed[t][rank..];
            DeinterleaveThenRotate(kPe[t], 0, rope, t);
            for (var head = 0; head < heads; head++)
                DeinterleaveThenRotate(q[t], (head * qHead) + nope, rope, t);
        }
        var scale = 1 / Math.Sqrt(qHead);
        var attn = new double[n][];
        for (var t = 0; t < n; t++)
        {
            attn[t] = new double[heads * vd];
            for (var head = 0; head < heads; head++)
            {
                var scores = new double[t + 1];
                for (var s = 0; s <= t; s++)
                {
                    double dot = 0;
                    for (var i = 0; i < nope; i++)
                        dot += q[t][(head * qHead) + i] * kNope[s][(head * nope) + i];
                    for (var i = 0; i < rope; i++)
                        dot += q[t][(head * qHead) + nope + i] * kPe[s][i];
                    scores[s] = dot * scale;
                }
                var w = Softmax(scores);
                for (var s = 0; s <= t; s++)
                {
                    for (var i = 0; i < vd; i++)
                        attn[t][(head * vd) + i] += w[s] * values[s][(head * vd) + i];
                }
            }
        }
        return attn;
    }

    private double[] SparseMoe(double[] x, int layer, string p)
    {
        var c = _c;
        var router = _c.Architecture == "mixtral" ? p + "block_sparse_moe.gate.weight" : p + "mlp.gate.weight";
        var probs = Softmax(Linear(Tensor(router), x));
        var scores = (double[])probs.Clone();
        if (c.Architecture == "deepseek_v2" && c.TopkMethod == "group_limited_greedy")
        {
            var size = c.NumLocalExperts / c.NGroup;
            var groupScores = Enumerable.Range(0, c.NGroup).Select(g => probs.Skip(g * size).Take(size).Max()).ToArray();
            var keep = Enumerable.Range(0, c.NGroup).OrderByDescending(g => groupScores[g]).ThenBy(g => g).Take(c.TopkGroup).ToHashSet();
            for (var e = 0; e < scores.Length; e++)
            {
                if (!keep.Contains(e / size))
                    scores[e] = 0;
            }
        }
        var top = Enumerable.Range(0, scores.Length).OrderByDescending(e => scores[e]).ThenBy(e => e).Take(c.NumExpertsPerTok).ToArray();
        var weights = top.Select(e => scores[e]).ToArray();
        var sum = weights.Sum();
        if (c.Architecture == "deepseek_v2")
            weights = c.NumExpertsPerTok > 1 && c.NormTopKProb ? weights.Select(w => w / (sum + 1e-20)).ToArray() : weights.Select(w => w * c.RoutedScalingFactor).ToArray();
        else if (c.Architecture == "mixtral" || c.NormTopKProb)
            weights = weights.Select(w => w / sum).ToArray();

        var output = new double[x.Length];
        for (var j = 0; j < top.Length; j++)
        {
            var prefix = c.Architecture == "mixtral" ? $"{p}block_sparse_moe.experts.{top[j]}." : $"{p}mlp.experts.{top[j]}.";
            var y = c.Architecture == "mixtral" ? Mlp(x, prefix, "w1", "w3", "w2") : Mlp(x, prefix);
            for (var i = 0; i < output.Length; i++)
                output[i] += weights[j] * y[i];
        }
        if (c.Architecture == "qwen2_moe" && c.SharedExpertIntermediateSize > 0)
        {
            var shared = Mlp(x, p + "mlp.shared_expert.");
            var gate = 1 / (1 + Math.Exp(-Linear(Tensor(p + "mlp.shared_expert_gate.weight"), x)[0]));
            for (var i = 0; i < output.Length; i++)
                output[i] += gate * shared[i];
        }
        if (c.Architecture == "deepseek_v2" && c.NumSharedExperts > 0)
        {
            var shared = Mlp(x, p + "mlp.shared_experts.");
            for (var i = 0; i < output.Length; i++)
                output[i] += shared[i];
        }
        return output;
    }

    private double[] Mlp(double[] x, string prefix, string gateName = "gate_proj", string upName = "up_proj", string downName = "down_proj")
    {
        var gate = Linear(Tensor(prefix + gateName + ".weight"), x);
        var up = Linear(Tensor(prefix + upName + ".weight"), x);
        for (var i = 0; i < gate.Length; i++)
            gate[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
        return Linear(Tensor(prefix + downName + ".weight"), gate);
    }

    private double[] PerHeadNorm(double[] x, int heads, int d, double[] w)
    {
        var y = new double[x.Length];
        for (var head = 0; head < heads; head++)
            Array.Copy(RmsNorm(x[(head * d)..((head + 1) * d)], w), 0, y, head * d, d);
        return y;
    }

    private static void AddInPlace(double[][] rows, double[] bias)
    {
        foreach (var r in rows)
        {
            for (var i = 0; i < r.Length; i++)
                r[i] += bias[i];
        }
    }

    private static double[] Softmax(double[] z)
    {
        var max = z.Max();
        var e = z.Select(v => Math.Exp(v - max)).ToArray();
        var sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
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

    /// <summary>rotate_half RoPE on x[offset .. offset + d) at <paramref name="position"/>.</summary>
    private void RotateHalf(double[] x, int offset, int d, int position)
    {
        var half = d / 2;
        for (var i = 0; i < half; i++)
        {
            var angle = position / Math.Pow(_c.RopeTheta, 2.0 * i / d);
            var a = x[offset + i];
            var b = x[offset + i + half];
            x[offset + i] = (a * Math.Cos(angle)) - (b * Math.Sin(angle));
            x[offset + i + half] = (b * Math.Cos(angle)) + (a * Math.Sin(angle));
        }
    }

    /// <summary>DeepSeek-V2's apply_rotary_pos_emb: view(d/2, 2).transpose → [x0, x2, …, x1, x3, …], then rotate_half.</summary>
    private void DeinterleaveThenRotate(double[] x, int offset, int d, int position)
    {
        var permuted = new double[d];
        for (var i = 0; i < d / 2; i++)
        {
            permuted[i] = x[offset + (2 * i)];
            permuted[(d / 2) + i] = x[offset + (2 * i) + 1];
        }
        Array.Copy(permuted, 0, x, offset, d);
        RotateHalf(x, offset, d, position);
    }

    private double[] Tensor(string name) => Load(_byName.TryGetValue(name, out var t) ? t : throw new InvalidOperationException($"no tensor {name}"));

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
