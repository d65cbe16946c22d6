using System.IO.Hashing;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Server.Bank;
using Fabric.Transport;

namespace Fabric.Pool.Tests;

public sealed class ExpertBankTests : IClassFixture<TinyModelFixture>
{
    private readonly TinyModelFixture _model;

    public ExpertBankTests(TinyModelFixture model) => _model = model;

    [Fact]
    public void EveryExpert_IsGateUpDownContiguous_Aligned_AndHashed()
    {
        var checkpoint = Checkpoint.Open(_model.Path);
        using var bank = ExpertBank.Load(checkpoint);

        Assert.Equal(checkpoint.Experts.Count, bank.Catalog.Experts.Length);
        foreach (var entry in bank.Catalog.Experts)
        {
            var source = checkpoint[entry.Layer, entry.Expert];
            var expected = FileBytes(source.Gate).Concat(FileBytes(source.Up)).Concat(FileBytes(source.Down)).ToArray();
            var actual = RegionBytes(bank.Store, entry.RegionId, entry.Offset, entry.Length);
            Assert.Equal(0, entry.Offset % BankLayout.Alignment);
            Assert.Equal(expected, actual);
            Assert.Equal(XxHash64.HashToUInt64(expected), entry.Checksum);
            Assert.Equal(source.Gate.Length, entry.Up.Offset);
            Assert.Equal(source.Gate.Length + source.Up.Length, entry.Down.Offset);
            Assert.Equal(source.Down.Shape, entry.Down.Shape);
        }
        Assert.Equal(bank.Layout!.Experts.Count, bank.Catalog.Experts.Length);
    }

    [Fact]
    public void DenseTensors_LiveInTheirOwnRegion_WithChecksums()
    {
        var checkpoint = Checkpoint.Open(_model.Path);
        using var bank = ExpertBank.Load(checkpoint);
        var expertRegions = bank.Catalog.Experts.Select(e => e.RegionId).ToHashSet();
        Assert.Equal(checkpoint.Dense.Count, bank.Catalog.Dense.Length);
        foreach (var d in bank.Catalog.Dense)
        {
            Assert.DoesNotContain(d.RegionId, expertRegions);
            var expected = FileBytes(checkpoint.FindDense(d.Name)!);
            Assert.Equal(expected, RegionBytes(bank.Store, d.RegionId, d.Offset, d.Length));
            Assert.Equal(XxHash64.HashToUInt64(expected), d.Checksum);
        }
        Assert.Equal(bank.Store.TotalBytes, bank.Catalog.Regions.Sum(r => r.Length));
        Assert.True(bank.LoadStats.Bytes == checkpoint.ExpertBytes + checkpoint.DenseBytes);
    }

    [Fact]
    public void SmallRegionCap_SpreadsExpertsOverRegions_AndSmallReadsStillLoadExactly()
    {
        var checkpoint = Checkpoint.Open(_model.Path);
        var perExpert = checkpoint.Experts[0].Bytes;
        using var bank = ExpertBank.Load(checkpoint, new BankOptions { MaxRegionBytes = 3 * perExpert, ReadChunkBytes = 5000, ReaderThreads = 3 });
        Assert.Equal((checkpoint.Experts.Count / 3) + 1 + 1, bank.Store.Regions.Count);
        foreach (var entry in bank.Catalog.Experts)
            Assert.Equal(entry.Checksum, XxHash64.HashToUInt64(RegionBytes(bank.Store, entry.RegionId, entry.Offset, entry.Length)));
    }

    [Fact]
    public void NumaNodeZero_Loads()
    {
        using var bank = ExpertBank.Load(Checkpoint.Open(_model.Path), new BankOptions { NumaNode = 0 });
        Assert.NotEmpty(bank.Catalog.Experts);
    }

    [Fact]
    public void MissingNumaNode_IsOneClearSentence()
    {
        var e = Assert.Throws<FabricException>(() => ExpertBank.Load(Checkpoint.Open(_model.Path), new BankOptions { NumaNode = 4000 }));
        Assert.Matches("(NUMA node 4000 does not exist on this machine|not available|libnuma)", e.Message);
    }

    private static byte[] FileBytes(TensorEntry t)
    {
        var bytes = new byte[t.Length];
        using var h = File.OpenHandle(t.File);
        RandomAccess.Read(h, bytes, t.Offset);
        return bytes;
    }

    private static byte[] RegionBytes(RegionStore store, uint region, long offset, long length) =>
        store.Find(region)!.Slice(offset, (int)length).ToArray();
}

/// <summary>One tiny generated model shared by a test class.</summary>
public sealed class TinyModelFixture : IDisposable
{
    private readonly TempDirectory _dir = new();

    public TinyModelFixture() => ModelGenerator.Write(_dir.Path, ModelPresets.Tiny, seed: 21, routerSkew: 1);

    public string Path => _dir.Path;

    public void Dispose() => _dir.Dispose();
}
