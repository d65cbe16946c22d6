using System.Security.Cryptography;
using Fabric.Model;

namespace Fabric.Pool.Tests;

public sealed class GeneratorTests
{
    [Fact]
    public void Tiny_WritesMixtralCheckpoint_ThatOpensWithEveryExpert()
    {
        using var dir = new TempDirectory();
        var config = ModelGenerator.Write(dir.Path, ModelPresets.Tiny, seed: 7);

        var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal(config, checkpoint.Config);
        Assert.Equal(Architectures.Mixtral, checkpoint.Config.Architecture);
        Assert.Equal(config.TotalExperts, checkpoint.Experts.Count);
        var expert = checkpoint[3, 5];
        Assert.Equal("model.layers.3.block_sparse_moe.experts.5.w1.weight", expert.Gate.Name);
        Assert.Equal("model.layers.3.block_sparse_moe.experts.5.w3.weight", expert.Up.Name);
        Assert.Equal("model.layers.3.block_sparse_moe.experts.5.w2.weight", expert.Down.Name);
        Assert.Equal([config.IntermediateSize, config.HiddenSize], expert.Gate.Shape);
        Assert.Equal([config.HiddenSize, config.IntermediateSize], expert.Down.Shape);
        Assert.Equal(TensorDtype.BF16, expert.Up.Dtype);
        Assert.Equal([config.NumLocalExperts, config.HiddenSize], checkpoint.Router(2).Shape);
        Assert.NotNull(checkpoint.FindDense("model.embed_tokens.weight"));
        Assert.NotNull(checkpoint.FindDense("lm_head.weight"));
        Assert.NotNull(checkpoint.FindDense("model.layers.0.self_attn.q_proj.weight"));
        Assert.DoesNotContain(checkpoint.Dense, t => t.Name.Contains(".experts.", StringComparison.Ordinal));
        Assert.Equal(ModelGenerator.DataBytes(config), checkpoint.ExpertBytes + checkpoint.DenseBytes);
    }

    [Fact]
    public void SameSeed_GivesSameBytes_OtherSeedDiffers()
    {
        using var a = new TempDirectory();
        using var b = new TempDirectory();
        using var c = new TempDirectory();
        ModelGenerator.Write(a.Path, ModelPresets.Tiny, seed: 11);
        ModelGenerator.Write(b.Path, ModelPresets.Tiny, seed: 11);
        ModelGenerator.Write(c.Path, ModelPresets.Tiny, seed: 12);
        var hashA = SHA256.HashData(File.ReadAllBytes(a.File("model.safetensors")));
        Assert.Equal(hashA, SHA256.HashData(File.ReadAllBytes(b.File("model.safetensors"))));
        Assert.NotEqual(hashA, SHA256.HashData(File.ReadAllBytes(c.File("model.safetensors"))));
    }

    [Fact]
    public void F32_WeightsAreFiniteAndScaledByFanIn()
    {
        using var dir = new TempDirectory();
        var config = ModelGenerator.Write(dir.Path, ModelPresets.Tiny with { Dtype = TensorDtype.F32 }, seed: 3);
        var checkpoint = Checkpoint.Open(dir.Path);
        var gate = ReadFloats(checkpoint[0, 0].Gate);
        Assert.All(gate, v => Assert.True(float.IsFinite(v)));
        var rms = Math.Sqrt(gate.Select(v => (double)v * v).Average());
        // Column 0 is zero, the rest uniform with std 1/sqrt(hidden).
        Assert.InRange(rms, 0.8 / Math.Sqrt(config.HiddenSize), 1.1 / Math.Sqrt(config.HiddenSize));
        var norm = ReadFloats(checkpoint.FindDense("model.norm.weight")!);
        Assert.All(norm, v => Assert.Equal(1f, v));
    }

    [Fact]
    public void Presets_HaveTheAdvertisedSizes()
    {
        Assert.InRange(ModelGenerator.DataBytes(ModelPresets.Tiny), 1_000_000, 5_000_000);
        Assert.InRange(ModelGenerator.DataBytes(ModelPresets.Small), 80_000_000, 140_000_000);
        Assert.InRange(ModelGenerator.DataBytes(ModelPresets.Medium), 1_700_000_000, 2_300_000_000);
        Assert.True(ModelPresets.Medium.NumLocalExperts >= 32);
        Assert.True(ModelPresets.Medium.NumHiddenLayers >= 4);
    }

    internal static float[] ReadFloats(TensorEntry tensor)
    {
        var bytes = new byte[tensor.Length];
        using var handle = File.OpenHandle(tensor.File);
        RandomAccess.Read(handle, bytes, tensor.Offset);
        var values = new float[tensor.Elements];
        WeightEncoding.Decode(bytes, tensor.Dtype, values);
        return values;
    }
}
