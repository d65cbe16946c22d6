using System.Globalization;

namespace Fabric.Model;

/// <summary>
/// Writes a synthetic Mixtral checkpoint (<c>config.json</c> + <c>model.safetensors</c>, exact Hugging Face naming)
/// whose weights are deterministic from a seed.
/// <para>
/// Scaling: embeddings have unit-variance entries, every projection has entries of standard deviation
/// 1/sqrt(fan-in), and the projections that write into the residual stream (o_proj, w2) are further scaled by
/// 1/sqrt(2 × layers), so that activations stay of order 1 through the whole stack.
/// </para>
/// <para>
/// Router skew: hidden dimension 0 is an "anchor" that every hidden state shares. Every embedding row holds the
/// constant A = sqrt(hidden − 1) there, no weight reads it (column 0 of every projection is zero) and none writes it
/// (row 0 of o_proj and w2 is zero), so after RMSNorm every token carries x[0] ≈ A / RMS(h) ≈ sqrt((hidden − 1) / 2).
/// The router alone reads the anchor: in layer L, expert e's gate row gets column 0 = b_e / sqrt((hidden − 1) / 2),
/// which adds the logit bias b_e = −<see cref="SkewLogitScale"/> × ALPHA × ln(rank_e) to every token, where rank_e
/// (1 = most popular) is a seeded permutation of the layer's experts (<see cref="PopularityRanks"/>). The random part
/// of the router gives logits of standard deviation about 1, so the bias acts as a Zipf prior of exponent
/// <see cref="SkewLogitScale"/> × ALPHA over the experts. With ALPHA = 1, 8 experts and top-2, the most popular expert
/// takes about 17% of a layer's selections (real Mixtral-8x7B: 13.7–19.9%, mean 15.3%); ALPHA = 0 is flat (12.5%).
/// </para>
/// </summary>
public static class ModelGenerator
{
    /// <summary>Logit bias per unit of ALPHA per unit of ln(rank), in units of the router's random logit spread.</summary>
    public const double SkewLogitScale = 0.2;

    /// <summary>
    /// Writes the model into <paramref name="outputDirectory"/> (created if needed) and returns its config.
    /// <paramref name="progress"/> gets bytes of model.safetensors written so far.
    /// </summary>
    public static ModelConfig Write(string outputDirectory, ModelConfig config, ulong seed, double routerSkew = 0, IProgress<long>? progress = null)
    {
        if (config.Architecture != Architectures.Mixtral)
            throw new CheckpointException($"The generator writes Mixtral checkpoints only, not '{config.Architecture}'.");
        if (!(routerSkew >= 0) || double.IsInfinity(routerSkew))
            throw new CheckpointException($"The router skew must be a number ≥ 0, not {routerSkew.ToString(CultureInfo.InvariantCulture)}.");
        config = config with { RouterSkew = routerSkew, TieWordEmbeddings = false };
        config.Validate("the generator's model");
        if (config.HiddenSize < 2)
            throw new CheckpointException("The generator needs hidden_size ≥ 2 (dimension 0 is the router-skew anchor).");

        Directory.CreateDirectory(outputDirectory);
        var recipes = BuildRecipes(config, seed, routerSkew);
        var specs = recipes.Select(r => r.Spec).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["fabric_generator"] = "ModelGenerator",
            ["fabric_seed"] = seed.ToString(CultureInfo.InvariantCulture),
            ["fabric_router_skew"] = routerSkew.ToString("R", CultureInfo.InvariantCulture),
        };

        var modelPath = Path.Combine(outputDirectory, "model.safetensors");
        var temporary = modelPath + ".partial";
        SafetensorsWriter.Write(temporary, specs, metadata, (t, first, destination) => recipes[t].Fill(first, destination), progress);
        File.Move(temporary, modelPath, overwrite: true);
        var index = Path.Combine(outputDirectory, Checkpoint.IndexFileName);
        if (File.Exists(index))
            File.Delete(index);
        ModelConfigReader.Save(config, Path.Combine(outputDirectory, "config.json"));
        Tokenization.GeneratedTokenizer.Write(outputDirectory, config);
        return config;
    }

    /// <summary>Bytes model.safetensors will hold for <paramref name="config"/> (tensor data only, without the header).</summary>
    public static long DataBytes(ModelConfig config) => BuildRecipes(config, 0, 0).Sum(r => r.Spec.Bytes);

    /// <summary>
    /// The popularity rank the generator gave each expert of <paramref name="layer"/> (1 = most popular): a seeded
    /// permutation of 1..experts.
    /// </summary>
    public static int[] PopularityRanks(int experts, ulong seed, int layer)
    {
        var ranks = Enumerable.Range(1, experts).ToArray();
        var random = new Random(unchecked((int)SplitMix.Mix(seed ^ (0x5EED_0000UL + (ulong)layer))));
        random.Shuffle(ranks);
        return ranks;
    }

    /// <summary>The logit bias the router adds for an expert of <paramref name="rank"/> at <paramref name="routerSkew"/>.</summary>
    public static double SkewBias(int rank, double routerSkew) => -SkewLogitScale * routerSkew * Math.Log(rank);

    private static List<TensorRecipe> BuildRecipes(ModelConfig c, ulong seed, double skew)
    {
        var h = c.HiddenSize;
        var q = c.NumAttentionHeads * c.HeadDim;
        var kv = c.NumKeyValueHeads * c.HeadDim;
        var residualScale = 1.0 / Math.Sqrt(2.0 * c.NumHiddenLayers);
        var anchor = Math.Sqrt(h - 1);
        var anchorAfterNorm = Math.Sqrt((h - 1) / 2.0);
        var list = new List<TensorRecipe>();

        void Add(string name, long[] shape, double std, double constant = 0, double col0 = 0, double[]? col0PerRow = null, bool zeroRow0 = false)
        {
            var index = (ulong)list.Count;
            list.Add(new TensorRecipe(new TensorSpec(name, c.Dtype, shape), SplitMix.Mix(seed * 0x9E3779B97F4A7C15UL + index + 1),
                std, constant, col0, col0PerRow, zeroRow0));
        }

        Add("model.embed_tokens.weight", [c.VocabSize, h], 1.0, col0: anchor);
        for (var layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            var p = $"model.layers.{layer}.";
            Add(p + "input_layernorm.weight", [h], 0, constant: 1);
            Add(p + "self_attn.q_proj.weight", [q, h], 1 / Math.Sqrt(h));
            Add(p + "self_attn.k_proj.weight", [kv, h], 1 / Math.Sqrt(h));
            Add(p + "self_attn.v_proj.weight", [kv, h], 1 / Math.Sqrt(h));
            Add(p + "self_attn.o_proj.weight", [h, q], residualScale / Math.Sqrt(q), zeroRow0: true);
            Add(p + "post_attention_layernorm.weight", [h], 0, constant: 1);

            var ranks = PopularityRanks(c.NumLocalExperts, seed, layer);
            var bias = ranks.Select(r => SkewBias(r, skew) / anchorAfterNorm).ToArray();
            Add(TensorNames.Router(c.Architecture, layer), [c.NumLocalExperts, h], Math.Sqrt(2.0 / (h - 1)), col0PerRow: bias);
            for (var e = 0; e < c.NumLocalExperts; e++)
            {
                Add(TensorNames.Expert(c.Architecture, layer, e, ExpertProjection.Gate), [c.IntermediateSize, h], 1 / Math.Sqrt(h));
                Add(TensorNames.Expert(c.Architecture, layer, e, ExpertProjection.Down), [h, c.IntermediateSize], residualScale / Math.Sqrt(c.IntermediateSize), zeroRow0: true);
                Add(TensorNames.Expert(c.Architecture, layer, e, ExpertProjection.Up), [c.IntermediateSize, h], 1 / Math.Sqrt(h));
            }
        }
        Add("model.norm.weight", [h], 0, constant: 1);
        Add("lm_head.weight", [c.VocabSize, h], 1 / Math.Sqrt(h));
        return list;
    }

    /// <summary>How one tensor's values are made: uniform noise of a given standard deviation with fixed column 0 / row 0.</summary>
    private sealed record TensorRecipe(TensorSpec Spec, ulong Seed, double Std, double Constant, double Col0, double[]? Col0PerRow, bool ZeroRow0)
    {
        private const int Block = 1 << 16;

        public void Fill(long first, Memory<byte> destination)
        {
            var elementSize = Spec.Dtype.ByteSize();
            var count = destination.Length / elementSize;
            var blocks = (count + Block - 1) / Block;
            Parallel.For(0, blocks, b =>
            {
                var start = b * Block;
                var n = Math.Min(Block, count - start);
                Span<float> values = new float[n];
                Generate(first + start, values);
                WeightEncoding.Encode(values, Spec.Dtype, destination.Span.Slice(start * elementSize, n * elementSize));
            });
        }

        private void Generate(long first, Span<float> values)
        {
            if (Spec.Shape.Length == 1)
            {
                values.Fill((float)Constant);
                return;
            }
            var cols = Spec.Shape[1];
            var amplitude = Std * Math.Sqrt(3.0);
            for (var i = 0; i < values.Length; i++)
            {
                var index = first + i;
                var col = index % cols;
                var row = index / cols;
                float v;
                if (col == 0)
                    v = (float)(Col0PerRow is not null ? Col0PerRow[row] : Col0);
                else if (ZeroRow0 && row == 0)
                    v = 0;
                else
                    v = (float)(amplitude * SplitMix.UniformSigned(Seed, (ulong)index));
                values[i] = v;
            }
        }
    }
}

/// <summary>A counter-based generator: value i of a stream depends only on (seed, i), so chunks can be made in parallel.</summary>
internal static class SplitMix
{
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [-1, 1).</summary>
    public static double UniformSigned(ulong seed, ulong index) =>
        ((Mix(seed + (index * 0xD1B54A32D192ED03UL)) >> 11) * (1.0 / (1UL << 53)) * 2.0) - 1.0;
}
