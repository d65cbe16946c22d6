using System.Text.Json;
using Fabric.Model;
using Fabric.Pool.Server.Bank;

namespace Fabric.Pool.Tests;

/// <summary>Each family's config.json fields and Hugging Face defaults, the refusals of what the engine does not implement, and each family's checkpoint layout.</summary>
public sealed class FamilyConfigTests
{
    private static ModelConfig Parse(string json) => ModelConfigReader.Parse(JsonDocument.Parse(json).RootElement, "config.json");

    private static string Refusal(string json) => Assert.Throws<CheckpointException>(() => Parse(json)).Message;

    private const string Qwen3 = """
        "model_type":"qwen3_moe","vocab_size":151936,"hidden_size":2048,"intermediate_size":6144,"moe_intermediate_size":768,
        "num_hidden_layers":48,"num_attention_heads":32,"num_key_value_heads":4,"head_dim":128,"num_experts":128,"num_experts_per_tok":8
        """;

    private const string DeepseekLite = """
        "architectures":["DeepseekV2ForCausalLM"],"model_type":"deepseek_v2","vocab_size":102400,"hidden_size":2048,"intermediate_size":10944,
        "moe_intermediate_size":1408,"num_hidden_layers":27,"num_attention_heads":16,"num_key_value_heads":16,"n_shared_experts":2,
        "n_routed_experts":64,"num_experts_per_tok":6,"first_k_dense_replace":1,"kv_lora_rank":512,"q_lora_rank":null,
        "qk_nope_head_dim":128,"qk_rope_head_dim":64,"v_head_dim":128,"topk_method":"greedy","routed_scaling_factor":1.0
        """;

    [Fact]
    public void Qwen3Moe_HeadDimFromConfig_PerHeadQkNorm_DefaultsAsTransformers()
    {
        var c = Parse("{" + Qwen3 + "}");
        Assert.Equal(Architectures.Qwen3Moe, c.Architecture);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(QkNormKind.PerHead, c.QkNorm);
        Assert.False(c.NormTopKProb);
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.Equal(0, c.SharedMlpWidth);
        Assert.False(c.QkvBias);
        Assert.Equal(48 * 128, c.TotalExperts);
    }

    [Fact]
    public void Qwen2Moe_MlpOnlyLayersAndSparseStep_MakeDenseLayers_ExpertLayersCountSparseOnes()
    {
        var c = Parse("""
            {"model_type":"qwen2_moe","vocab_size":100,"hidden_size":64,"moe_intermediate_size":32,"num_hidden_layers":6,
             "num_attention_heads":4,"num_experts":8,"num_experts_per_tok":2,"decoder_sparse_step":2,"mlp_only_layers":[3]}
            """);
        Assert.True(c.QkvBias);
        Assert.Equal(5632, c.SharedExpertIntermediateSize);
        Assert.Equal(5632, c.DenseIntermediateSize);
        Assert.True(c.SharedMlpGated);
        // (L + 1) % 2 == 0 → 1, 3, 5; 3 is MLP-only.
        Assert.Equal([false, true, false, false, false, true], Enumerable.Range(0, 6).Select(c.IsSparseLayer).ToArray());
        Assert.Equal([-1, 0, -1, -1, -1, 1], Enumerable.Range(0, 6).Select(c.ExpertLayerOf).ToArray());
        Assert.Equal(16, c.TotalExperts);
    }

    [Fact]
    public void DeepseekV2Lite_MlaFields_DenseFirstLayer_SharedExperts()
    {
        var c = Parse("{" + DeepseekLite + "}");
        Assert.True(c.UsesLatentAttention);
        Assert.Equal(0, c.QLoraRank);
        Assert.Equal(192, c.QkHeadDim);
        Assert.Equal(2 * 1408, c.SharedMlpWidth);
        Assert.False(c.IsSparseLayer(0));
        Assert.Equal(26 * 64, c.TotalExperts);
        Assert.Equal(512 + 64, c.KvFloatsPerLayerPosition);
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.False(c.NormTopKProb);
    }

    [Fact]
    public void DeepseekV2_MisspelledDefaultTopkMethod_IsGreedy_AsItsGate()
    {
        var c = Parse("{" + DeepseekLite.Replace("\"topk_method\":\"greedy\"", "\"topk_method\":\"gready\"", StringComparison.Ordinal) + "}");
        Assert.Equal("greedy", c.TopkMethod);
    }

    [Theory]
    [InlineData("\"rope_scaling\":{\"type\":\"yarn\",\"factor\":40}", "config.json: rope_scaling (yarn) is set, and Fabric implements plain RoPE only.")]
    [InlineData("\"use_sliding_window\":true", "config.json: use_sliding_window is true, and Fabric implements full attention only.")]
    [InlineData("\"attention_bias\":true", "config.json: attention_bias is true, and Fabric implements this family's attention without biases only.")]
    [InlineData("\"hidden_act\":\"gelu\"", "config.json: hidden_act 'gelu' is not SiLU, the only activation Fabric implements.")]
    public void Qwen3_UnsupportedField_IsOneSentenceNamingIt(string field, string sentence) =>
        Assert.Equal(sentence, Refusal("{" + Qwen3 + "," + field + "}"));

    [Theory]
    [InlineData("\"scoring_func\":\"sigmoid\"", "config.json: scoring_func 'sigmoid' is not softmax, the only routing score Fabric implements for DeepSeek-V2.")]
    [InlineData("\"topk_method\":\"noaux_tc\"", "config.json: topk_method 'noaux_tc' is not one Fabric implements (greedy, group_limited_greedy).")]
    [InlineData("\"n_routed_experts\":null", "config.json: n_routed_experts is null, so the model has no routed experts for Fabric to page.")]
    public void DeepseekV2_UnsupportedField_IsOneSentenceNamingIt(string field, string sentence)
    {
        var json = "{" + DeepseekLite.Replace("\"topk_method\":\"greedy\",", "", StringComparison.Ordinal).Replace("\"n_routed_experts\":64,", "", StringComparison.Ordinal) + "," + field + (field.StartsWith("\"n_routed", StringComparison.Ordinal) ? "" : ",\"n_routed_experts\":64") + "}";
        Assert.Equal(sentence, Refusal(json));
    }

    [Fact]
    public void MixtralSlidingWindowAndUnknownModelType_AreRefused()
    {
        Assert.Equal("config.json: sliding_window (4096) is set, and Fabric implements full attention only.", Refusal("""
            {"model_type":"mixtral","vocab_size":100,"hidden_size":64,"intermediate_size":32,"num_hidden_layers":2,"num_attention_heads":4,
             "num_local_experts":8,"num_experts_per_tok":2,"sliding_window":4096}
            """));
        Assert.StartsWith("config.json: unknown architecture 'deepseek_v3' (model_type)", Refusal("""{"model_type":"deepseek_v3"}"""), StringComparison.Ordinal);
    }

    public static TheoryData<string> Families => [.. Architectures.All];

    [Theory]
    [MemberData(nameof(Families))]
    public void Generator_WritesTheFamilyLayout_ShardedAsReleased_AndThePoolLoadsIt(string family)
    {
        using var single = new TempDirectory();
        using var sharded = new TempDirectory();
        var config = ModelPresets.Get("tiny", TensorDtype.BF16, family);
        ModelGenerator.Write(single.Path, config, seed: 5);
        ModelGenerator.Write(sharded.Path, config, seed: 5, shards: 3);
        Assert.True(File.Exists(sharded.File("model-00003-of-00003.safetensors")));
        Assert.False(File.Exists(sharded.File("model.safetensors")));

        var a = Checkpoint.Open(single.Path);
        var b = Checkpoint.Open(sharded.Path);
        Assert.Equal(3, b.Files.Count);
        Assert.Equal(a.Config, b.Config);
        Assert.Equal(a.Dense.Select(t => (t.Name, t.ShapeText)).Order(), b.Dense.Select(t => (t.Name, t.ShapeText)).Order());
        Assert.Equal(config.TotalExperts, b.Experts.Count);
        Assert.Equal(ModelLayout.DenseTensors(config).Select(t => t.Name).Order(), b.Dense.Select(t => t.Name).Order());
        Assert.Equal(config.SharedMlpWidth > 0 ? config.ExpertLayers : 0, b.SharedExperts.Count);

        using var bankA = ExpertBank.Load(a);
        using var bankB = ExpertBank.Load(b);
        Assert.Equal(bankA.Catalog.Experts.Select(e => e.Checksum), bankB.Catalog.Experts.Select(e => e.Checksum));
        Assert.Equal(config.TotalExperts, bankB.Catalog.Experts.Length);
    }

    [Fact]
    public void Checkpoint_MissingATensorTheConfigNeeds_IsOneSentenceNamingIt()
    {
        using var dir = new TempDirectory();
        ModelGenerator.Write(dir.Path, ModelPresets.Get("tiny", TensorDtype.BF16, Architectures.DeepseekV2), seed: 5, shards: 2);
        // Drop one tensor from the index: its bytes stay in a shard, but the checkpoint no longer has it.
        var index = dir.File(Checkpoint.IndexFileName);
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(index))!;
        root["weight_map"]!.AsObject().Remove("model.layers.2.self_attn.kv_a_layernorm.weight");
        File.WriteAllText(index, root.ToJsonString());
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(dir.Path));
        Assert.Equal($"Checkpoint {dir.Path} is missing tensor model.layers.2.self_attn.kv_a_layernorm.weight, which a DeepseekV2ForCausalLM with this config.json needs.", error.Message);
    }
}
