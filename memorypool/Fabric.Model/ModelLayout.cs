namespace Fabric.Model;

/// <summary>What a dense tensor is, for the generator's initialisation and the engine's loading.</summary>
public enum DenseRole
{
    /// <summary>The token embedding table [vocab, hidden].</summary>
    Embedding,

    /// <summary>An RMSNorm weight over the residual stream (kept at 1 by the generator).</summary>
    ResidualNorm,

    /// <summary>Any other RMSNorm weight (q/k norms, MLA's latent norms).</summary>
    Norm,

    /// <summary>A projection reading the normalised hidden state [out, hidden].</summary>
    InputProjection,

    /// <summary>A projection reading something other than the hidden state [out, in].</summary>
    InnerProjection,

    /// <summary>A projection writing the residual stream [hidden, in] (o_proj, down_proj).</summary>
    ResidualProjection,

    /// <summary>A bias vector.</summary>
    Bias,

    /// <summary>A sparse layer's router [experts, hidden].</summary>
    Router,

    /// <summary>The LM head [vocab, hidden].</summary>
    LmHead,
}

/// <summary>One dense tensor a family's checkpoint holds: its name, shape and role.</summary>
public sealed record DenseTensorSpec(string Name, long[] Shape, DenseRole Role);

/// <summary>
/// The dense tensors each family's checkpoint holds, named and shaped as in its released checkpoints and
/// <c>modeling_*.py</c>: the one list the generator writes and the checkpoint reader checks.
/// </summary>
public static class ModelLayout
{
    /// <summary>Every dense tensor of <paramref name="c"/> in file order (embedding, layers, final norm, LM head).</summary>
    public static IReadOnlyList<DenseTensorSpec> DenseTensors(ModelConfig c)
    {
        var h = (long)c.HiddenSize;
        var list = new List<DenseTensorSpec> { new("model.embed_tokens.weight", [c.VocabSize, h], DenseRole.Embedding) };
        for (var layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            var p = $"model.layers.{layer}.";
            list.Add(new(p + "input_layernorm.weight", [h], DenseRole.ResidualNorm));
            AddAttention(list, c, p + "self_attn.");
            list.Add(new(p + "post_attention_layernorm.weight", [h], DenseRole.ResidualNorm));
            if (!c.IsSparseLayer(layer))
            {
                AddMlp(list, c, layer, c.DenseIntermediateSize, TensorNames.DenseMlp);
                continue;
            }
            list.Add(new(TensorNames.Router(c.Architecture, layer), [c.NumLocalExperts, h], DenseRole.Router));
            if (c.SharedMlpWidth > 0)
                AddMlp(list, c, layer, c.SharedMlpWidth, (l, proj) => TensorNames.SharedMlp(c.Architecture, l, proj));
            if (c.SharedMlpGated)
                list.Add(new(TensorNames.SharedExpertGate(layer), [1, h], DenseRole.InputProjection));
        }
        list.Add(new("model.norm.weight", [h], DenseRole.ResidualNorm));
        if (!c.TieWordEmbeddings)
            list.Add(new("lm_head.weight", [c.VocabSize, h], DenseRole.LmHead));
        return list;
    }

    private static void AddAttention(List<DenseTensorSpec> list, ModelConfig c, string p)
    {
        var h = (long)c.HiddenSize;
        if (c.UsesLatentAttention)
        {
            var qWidth = (long)c.NumAttentionHeads * c.QkHeadDim;
            if (c.QLoraRank > 0)
            {
                list.Add(new(p + "q_a_proj.weight", [c.QLoraRank, h], DenseRole.InputProjection));
                list.Add(new(p + "q_a_layernorm.weight", [c.QLoraRank], DenseRole.Norm));
                list.Add(new(p + "q_b_proj.weight", [qWidth, c.QLoraRank], DenseRole.InnerProjection));
            }
            else
            {
                list.Add(new(p + "q_proj.weight", [qWidth, h], DenseRole.InputProjection));
            }
            list.Add(new(p + "kv_a_proj_with_mqa.weight", [c.KvLoraRank + c.QkRopeHeadDim, h], DenseRole.InputProjection));
            list.Add(new(p + "kv_a_layernorm.weight", [c.KvLoraRank], DenseRole.Norm));
            list.Add(new(p + "kv_b_proj.weight", [(long)c.NumAttentionHeads * (c.QkNopeHeadDim + c.VHeadDim), c.KvLoraRank], DenseRole.InnerProjection));
            list.Add(new(p + "o_proj.weight", [h, (long)c.NumAttentionHeads * c.VHeadDim], DenseRole.ResidualProjection));
            return;
        }
        var q = (long)c.NumAttentionHeads * c.HeadDim;
        var kv = (long)c.NumKeyValueHeads * c.HeadDim;
        list.Add(new(p + "q_proj.weight", [q, h], DenseRole.InputProjection));
        if (c.QkvBias)
            list.Add(new(p + "q_proj.bias", [q], DenseRole.Bias));
        list.Add(new(p + "k_proj.weight", [kv, h], DenseRole.InputProjection));
        if (c.QkvBias)
            list.Add(new(p + "k_proj.bias", [kv], DenseRole.Bias));
        list.Add(new(p + "v_proj.weight", [kv, h], DenseRole.InputProjection));
        if (c.QkvBias)
            list.Add(new(p + "v_proj.bias", [kv], DenseRole.Bias));
        list.Add(new(p + "o_proj.weight", [h, q], DenseRole.ResidualProjection));
        switch (c.QkNorm)
        {
            case QkNormKind.PerHead:
                list.Add(new(p + "q_norm.weight", [c.HeadDim], DenseRole.Norm));
                list.Add(new(p + "k_norm.weight", [c.HeadDim], DenseRole.Norm));
                break;
            case QkNormKind.FullWidth:
                list.Add(new(p + "q_norm.weight", [q], DenseRole.Norm));
                list.Add(new(p + "k_norm.weight", [kv], DenseRole.Norm));
                break;
        }
    }

    private static void AddMlp(List<DenseTensorSpec> list, ModelConfig c, int layer, int width, Func<int, ExpertProjection, string> name)
    {
        var h = (long)c.HiddenSize;
        list.Add(new(name(layer, ExpertProjection.Gate), [width, h], DenseRole.InputProjection));
        list.Add(new(name(layer, ExpertProjection.Up), [width, h], DenseRole.InputProjection));
        list.Add(new(name(layer, ExpertProjection.Down), [h, width], DenseRole.ResidualProjection));
    }
}
