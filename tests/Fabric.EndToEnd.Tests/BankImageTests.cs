using System.Buffers.Binary;
using System.IO.Hashing;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Transport;

namespace Fabric.EndToEnd.Tests;

/// <summary><c>fabric-pool convert</c> and <c>serve --image</c>: real processes, real files on disk and on /dev/shm.</summary>
public sealed class BankImageTests : IClassFixture<PoolModel>
{
    private readonly PoolModel _model;

    public BankImageTests(PoolModel model) => _model = model;

    private async Task<string> ConvertAsync(string path)
    {
        var run = await PoolProcess.RunAsync($"convert --model {_model.ModelDirectory} --out {path}");
        Assert.True(run.Code == 0, run.Stderr);
        Assert.StartsWith($"wrote {path}: 32 experts + ", run.Stdout.Trim(), StringComparison.Ordinal);
        return path;
    }

    [Fact]
    public async Task ImageServedOverTcpAndInPlaceShm_ReadsTheSameBytesAsTheSafetensorsPool()
    {
        var onDisk = await ConvertAsync(Path.Combine(_model.Directory, "bank.fbank"));
        var onShm = _model.NewShmPath();
        File.Copy(onDisk, onShm);
        await using var fromModel = await PoolProcess.StartAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --shm {_model.NewShmPath()}", endpoints: 2);
        await using var fromDisk = await PoolProcess.StartAsync($"serve --image {onDisk} --listen tcp://127.0.0.1:0", endpoints: 1);
        await using var fromShm = await PoolProcess.StartAsync($"serve --image {onShm} --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0", endpoints: 2);
        Assert.Equal($"shm://{onShm}", fromShm.Endpoint("shm"));
        Assert.StartsWith($"mapped image {onShm}: 32 experts", fromShm.Lines[0], StringComparison.Ordinal);

        var expected = await ReadAllAsync(fromModel.Endpoint("tcp"));
        Assert.Equal(expected, await ReadAllAsync(fromModel.Endpoint("shm")));
        foreach (var endpoint in new[] { fromDisk.Endpoint("tcp"), fromShm.Endpoint("tcp"), fromShm.Endpoint("shm") })
            Assert.Equal(expected, await ReadAllAsync(endpoint));

        // Stopping a pool that served the image in place leaves the image, its shm header cleared, and it serves again.
        Assert.Equal(0, await fromShm.TerminateAsync(TimeSpan.FromSeconds(20)));
        Assert.True(File.Exists(onShm));
        Assert.False(File.Exists(onShm + ".ctl"));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(onShm).AsSpan(0, 8)));
        await using var again = await PoolProcess.StartAsync($"serve --image {onShm} --listen tcp://127.0.0.1:0", endpoints: 2);
        Assert.Equal(expected, await ReadAllAsync(again.Endpoint("shm")));
    }

    [Fact]
    public async Task ImageCache_ConvertsOnFirstStart_AndMapsAfter()
    {
        var cache = Path.Combine(_model.Directory, "cache-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(cache);
        var args = $"serve --model {_model.ModelDirectory} --image-cache {cache} --listen tcp://127.0.0.1:0";
        string first;
        await using (var pool = await PoolProcess.StartAsync(args, endpoints: 1))
        {
            Assert.StartsWith($"converted {_model.ModelDirectory} into {cache}/", pool.Lines[0], StringComparison.Ordinal);
            first = await ReadAllAsync(pool.Endpoint("tcp"));
        }
        var image = Assert.Single(Directory.GetFiles(cache));
        var written = File.GetLastWriteTimeUtc(image);
        await using (var pool = await PoolProcess.StartAsync(args, endpoints: 1))
        {
            Assert.StartsWith($"mapped image {image}: ", pool.Lines[0], StringComparison.Ordinal);
            Assert.Equal(first, await ReadAllAsync(pool.Endpoint("tcp")));
        }
        Assert.Equal(written, File.GetLastWriteTimeUtc(image));
    }

    [Fact]
    public async Task BadImages_AreOneSentence_ExitTwo()
    {
        var good = await ConvertAsync(Path.Combine(_model.Directory, "good.fbank"));
        var bytes = await File.ReadAllBytesAsync(good);

        var truncated = Path.Combine(_model.Directory, "truncated.fbank");
        await File.WriteAllBytesAsync(truncated, bytes[..(bytes.Length / 2)]);
        ChildProgram.AssertRefused(await PoolProcess.RunAsync($"serve --image {truncated} --listen tcp://127.0.0.1:0"),
            $"fabric-pool: {truncated} is truncated: it holds {bytes.Length / 2} of the image's {bytes.Length} bytes; convert the model again.");

        var corrupt = Path.Combine(_model.Directory, "corrupt.fbank");
        var flipped = (byte[])bytes.Clone();
        flipped[32 * 1024 + 20] ^= 0x40; // a byte of the model fingerprint
        await File.WriteAllBytesAsync(corrupt, flipped);
        ChildProgram.AssertRefused(await PoolProcess.RunAsync($"serve --image {corrupt} --listen tcp://127.0.0.1:0"),
            $"fabric-pool: {corrupt} is a corrupt bank image (its header checksum does not match); convert the model again.");

        var future = Path.Combine(_model.Directory, "future.fbank");
        var versioned = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(versioned.AsSpan(32 * 1024 + 8), 2);
        await File.WriteAllBytesAsync(future, versioned);
        ChildProgram.AssertRefused(await PoolProcess.RunAsync($"serve --image {future} --listen tcp://127.0.0.1:0"),
            $"fabric-pool: {future} is a bank image of format version 2; this pool reads version 1, so convert the model again with this build.");

        var notAnImage = Path.Combine(_model.Directory, "model", "config.json");
        ChildProgram.AssertRefused(await PoolProcess.RunAsync($"serve --image {notAnImage} --listen tcp://127.0.0.1:0"),
            $"fabric-pool: {notAnImage} is not a Fabric bank image; write one with 'fabric pool convert --model DIR --out {notAnImage}'.");

        var other = Path.Combine(_model.Directory, "other-model");
        ModelGenerator.Write(other, ModelPresets.Tiny, seed: 7, routerSkew: 1);
        var otherFingerprint = ModelFingerprint.Format(ModelFingerprint.Of(Checkpoint.Open(other)));
        var imageFingerprint = ModelFingerprint.Format(ModelFingerprint.Of(Checkpoint.Open(_model.ModelDirectory)));
        ChildProgram.AssertRefused(await PoolProcess.RunAsync($"serve --image {good} --model {other} --listen tcp://127.0.0.1:0"),
            $"fabric-pool: {good} was converted from another model (fingerprint {imageFingerprint}) than {other} ({otherFingerprint}); convert that model again.");
    }

    /// <summary>Every expert and dense tensor read through the engines' reader (checksums verified), hashed together in catalog order.</summary>
    private static async Task<string> ReadAllAsync(string endpoint)
    {
        await using var reader = await PoolReader.ConnectAsync([FabricEndpoint.Parse(endpoint)], token: null);
        var catalog = reader.Catalog;
        using var buffer = new NativeBuffer(Math.Max(catalog.Experts.Max(e => e.Length), catalog.Dense.Max(d => d.Length)));
        var all = new XxHash128();
        foreach (var expert in catalog.Experts)
        {
            await reader.ReadExpertAsync(expert.Layer, expert.Expert, buffer.Memory);
            all.Append(buffer.Span[..(int)expert.Length]);
        }
        foreach (var dense in catalog.Dense)
        {
            await reader.ReadDenseAsync(dense.Name, buffer.Memory);
            all.Append(buffer.Span[..(int)dense.Length]);
        }
        Assert.Equal(0, reader.CorruptBlocks);
        return Convert.ToHexString(all.GetCurrentHash());
    }
}
