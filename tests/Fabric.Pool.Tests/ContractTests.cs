using System.Text.Json;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Transport;

namespace Fabric.Pool.Tests;

public sealed class ContractTests
{
    [Fact]
    public void CatalogReply_RoundTripsThroughControlMessage()
    {
        var part = new ExpertPart(0, [128, 64], TensorDtype.BF16, 16384);
        var reply = new CatalogReply(
            ModelPresets.Tiny with { RouterSkew = 1.5 },
            [new RegionInfo(1, 0xDEADBEEFUL, 1 << 20)],
            [new ExpertEntry(0, 0, 1, 4096, 49152, 42UL, part, part with { Offset = 16384 }, part with { Offset = 32768, Shape = [64, 128] })],
            [new DenseEntry("model.norm.weight", 2, 0, 128, [64], TensorDtype.BF16, 7UL)]);

        var message = ControlMessage.Create(PoolMessageTypes.CatalogReplyType, reply);
        var back = message.Read<CatalogReply>();

        Assert.Equal(reply.Model, back.Model);
        Assert.Equal(reply.Regions, back.Regions);
        Assert.Equal(32768, back.GetExpert(0, 0).Down.Offset);
        Assert.Equal([64L, 128L], back.Experts[0].Down.Shape);
        Assert.Equal("model.norm.weight", back.FindDense("model.norm.weight")!.Name);
    }

    [Fact]
    public void ModelConfig_SerialisesToSnakeCaseJson()
    {
        var json = JsonSerializer.Serialize(ModelPresets.Tiny);
        Assert.Contains("\"num_local_experts\":8", json, StringComparison.Ordinal);
        Assert.Contains("\"dtype\":\"BF16\"", json, StringComparison.Ordinal);
        Assert.Equal(ModelPresets.Tiny, JsonSerializer.Deserialize<ModelConfig>(json));
    }

    [Fact]
    public void Qwen2MoeConfig_IsRead_WithMoeWidthAndSharedExpert()
    {
        using var doc = JsonDocument.Parse("""
            {"architectures":["Qwen2MoeForCausalLM"],"model_type":"qwen2_moe","vocab_size":151936,"hidden_size":2048,
             "intermediate_size":5632,"moe_intermediate_size":1408,"shared_expert_intermediate_size":5632,
             "num_hidden_layers":24,"num_attention_heads":16,"num_key_value_heads":16,"num_experts":60,
             "num_experts_per_tok":4,"norm_topk_prob":false,"rms_norm_eps":1e-6,"rope_theta":1000000.0,
             "max_position_embeddings":8192,"tie_word_embeddings":false,"torch_dtype":"bfloat16","decoder_sparse_step":1,"mlp_only_layers":[]}
            """);
        var config = ModelConfigReader.Parse(doc.RootElement, "config.json");
        Assert.Equal(Architectures.Qwen2Moe, config.Architecture);
        Assert.Equal(1408, config.IntermediateSize);
        Assert.Equal(5632, config.SharedExpertIntermediateSize);
        Assert.Equal(60, config.NumLocalExperts);
        Assert.Equal(128, config.HeadDim);
        Assert.False(config.NormTopKProb);
    }

    [Fact]
    public void OlmoeConfig_IsRead()
    {
        using var doc = JsonDocument.Parse("""
            {"architectures":["OlmoeForCausalLM"],"model_type":"olmoe","vocab_size":50304,"hidden_size":2048,"intermediate_size":1024,
             "num_hidden_layers":16,"num_attention_heads":16,"num_key_value_heads":16,"num_experts":64,"num_experts_per_tok":8,
             "rms_norm_eps":1e-5,"rope_theta":10000.0,"max_position_embeddings":4096,"torch_dtype":"float32"}
            """);
        var config = ModelConfigReader.Parse(doc.RootElement, "config.json");
        Assert.Equal(Architectures.Olmoe, config.Architecture);
        Assert.Equal(64, config.NumLocalExperts);
        Assert.Equal(TensorDtype.F32, config.Dtype);
    }

    [Fact]
    public void SavedConfig_ReadsBackEqual()
    {
        using var dir = new TempDirectory();
        var config = ModelPresets.Small with { RouterSkew = 0.75, Dtype = TensorDtype.F32 };
        ModelConfigReader.Save(config, dir.File("config.json"));
        Assert.Equal(config, ModelConfigReader.Load(dir.File("config.json")));
    }

    [Theory]
    [InlineData("model.layers.3.block_sparse_moe.experts.7.w1.weight", 3, 7, ExpertProjection.Gate)]
    [InlineData("model.layers.0.block_sparse_moe.experts.0.w3.weight", 0, 0, ExpertProjection.Up)]
    [InlineData("model.layers.12.mlp.experts.59.down_proj.weight", 12, 59, ExpertProjection.Down)]
    public void ExpertNames_AreRecognised(string name, int layer, int expert, ExpertProjection projection)
    {
        Assert.True(TensorNames.TryParseExpert(name, out var l, out var e, out var p));
        Assert.Equal((layer, expert, projection), (l, e, p));
    }

    [Theory]
    [InlineData("model.layers.3.block_sparse_moe.gate.weight")]
    [InlineData("model.layers.3.mlp.shared_expert.gate_proj.weight")]
    [InlineData("model.layers.3.mlp.gate.weight")]
    [InlineData("model.embed_tokens.weight")]
    public void DenseNames_AreNotExperts(string name) =>
        Assert.False(TensorNames.TryParseExpert(name, out _, out _, out _));
}
