using System.Buffers.Binary;
using System.Text;
using Fabric.Model;

namespace Fabric.Pool.Tests;

/// <summary>Each malformed checkpoint is refused with one sentence naming the file and the tensor.</summary>
public sealed class CheckpointBadInputTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly string _model;

    public CheckpointBadInputTests()
    {
        ModelGenerator.Write(_dir.Path, ModelPresets.Tiny, seed: 1);
        _model = _dir.File("model.safetensors");
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void TruncatedData_NamesFileAndLastTensor()
    {
        using (var f = File.OpenWrite(_model))
            f.SetLength(f.Length - 100);
        var e = Refused();
        Assert.Contains("lm_head.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("past the end", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedHeader_SaysTruncated()
    {
        using (var f = File.OpenWrite(_model))
            f.SetLength(50);
        Assert.Contains("truncated", Refused().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FileShorterThanLengthPrefix_SaysTruncated()
    {
        File.WriteAllBytes(_model, [1, 2, 3]);
        Assert.Contains("truncated", Refused().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OverlappingOffsets_NameBothTensors()
    {
        WriteRaw("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 16);
        var e = Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(_model));
        Assert.Contains("tensor b overlaps tensor a", e.Message, StringComparison.Ordinal);
        Assert.Contains(_model, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OffsetsPastEnd_AreRefused()
    {
        WriteRaw("""{"big":{"dtype":"F32","shape":[250],"data_offsets":[0,1000]}}""", 16);
        var e = Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(_model));
        Assert.Contains("tensor big", e.Message, StringComparison.Ordinal);
        Assert.Contains("past the end", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LengthDisagreeingWithShape_IsRefused()
    {
        RewriteHeader(h => h.Replace("\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64]", "\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[65]", StringComparison.Ordinal));
        var e = Refused();
        Assert.Contains("tensor model.norm.weight holds 128 bytes but shape [65] of BF16 needs 130", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownDtype_IsRefused()
    {
        RewriteHeader(h => h.Replace("\"model.norm.weight\":{\"dtype\":\"BF16\"", "\"model.norm.weight\":{\"dtype\":\"I16\"", StringComparison.Ordinal));
        var e = Refused();
        Assert.Contains("tensor model.norm.weight has dtype 'I16'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingExpert_NamesLayerExpertAndTensor()
    {
        RewriteHeader(h => h.Replace("model.layers.1.block_sparse_moe.experts.5.w2.weight", "model.layers.1.block_sparse_moe.experts.5.wX.weight", StringComparison.Ordinal));
        var e = Refused();
        Assert.Contains("model.layers.1.block_sparse_moe.experts.5.w2.weight (layer 1, expert 5)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongExpertShape_IsRefused()
    {
        File.WriteAllText(_dir.File("config.json"), File.ReadAllText(_dir.File("config.json")).Replace("\"intermediate_size\": 128", "\"intermediate_size\": 96", StringComparison.Ordinal));
        var e = Refused();
        Assert.Contains("has shape [128, 64], but config.json asks for [96, 64]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownArchitecture_IsRefused()
    {
        File.WriteAllText(_dir.File("config.json"), File.ReadAllText(_dir.File("config.json")).Replace("\"model_type\": \"mixtral\"", "\"model_type\": \"llama\"", StringComparison.Ordinal));
        var e = Refused();
        Assert.Contains("unknown architecture 'llama'", e.Message, StringComparison.Ordinal);
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MoreExpertsThanThePagerAddresses_AreRefused()
    {
        var config = ModelPresets.Tiny with { NumLocalExperts = ModelConfig.MaxLayersOrExperts + 1 };
        var e = Assert.Throws<CheckpointException>(() => config.Validate("config.json"));
        Assert.Equal("config.json: Fabric handles at most 65,536 layers and 65,536 experts per layer; this model has 4 and 65,537.", e.Message);
    }

    [Fact]
    public void CorruptIndex_IsRefused()
    {
        File.WriteAllText(_dir.File(Checkpoint.IndexFileName), "{ \"weight_map\": { \"a\": ");
        var e = Refused();
        Assert.Contains(Checkpoint.IndexFileName + " is corrupt", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void IndexNamingMissingFile_IsRefused()
    {
        File.WriteAllText(_dir.File(Checkpoint.IndexFileName), """{"weight_map":{"model.norm.weight":"model-00002-of-00002.safetensors"}}""");
        Assert.Contains("lists model-00002-of-00002.safetensors, which does not exist", Refused().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ShardedCheckpoint_WithIndex_Opens()
    {
        // Split the generated file's tensors over two shards and write the index.
        var whole = Checkpoint.Open(_dir.Path);
        var all = whole.Files[0].Tensors;
        var halves = new[] { all.Take(all.Count / 2).ToList(), all.Skip(all.Count / 2).ToList() };
        var map = new Dictionary<string, string>();
        using var source = File.OpenHandle(_model);
        for (var s = 0; s < 2; s++)
        {
            var name = $"model-0000{s + 1}-of-00002.safetensors";
            var specs = halves[s].Select(t => new TensorSpec(t.Name, t.Dtype, t.Shape)).ToList();
            SafetensorsWriter.Write(_dir.File(name), specs, null, (i, first, dest) =>
            {
                var t = halves[s][i];
                RandomAccess.Read(source, dest.Span, t.Offset + (first * t.Dtype.ByteSize()));
            });
            foreach (var t in halves[s])
                map[t.Name] = name;
        }
        File.Delete(_model);
        File.WriteAllText(_dir.File(Checkpoint.IndexFileName), System.Text.Json.JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map }));

        var sharded = Checkpoint.Open(_dir.Path);
        Assert.Equal(2, sharded.Files.Count);
        Assert.Equal(whole.Experts.Count, sharded.Experts.Count);
        Assert.EndsWith("model-00002-of-00002.safetensors", sharded[3, 7].Down.File, StringComparison.Ordinal);
    }

    private CheckpointException Refused()
    {
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_dir.Path));
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    private void WriteRaw(string header, int dataBytes)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(_model, bytes);
    }

    private void RewriteHeader(Func<string, string> edit)
    {
        var bytes = File.ReadAllBytes(_model);
        var length = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = Encoding.UTF8.GetString(bytes, 8, length);
        var edited = Encoding.UTF8.GetBytes(edit(header));
        Assert.NotEqual(header, Encoding.UTF8.GetString(edited));
        using var f = File.Create(_model);
        var prefix = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)edited.Length);
        f.Write(prefix);
        f.Write(edited);
        f.Write(bytes, 8 + length, bytes.Length - 8 - length);
    }
}
