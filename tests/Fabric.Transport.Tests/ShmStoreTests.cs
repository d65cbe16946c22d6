using System.Buffers.Binary;
using Fabric.Common;
using Fabric.Transport.Host;
using Fabric.Transport.Shm;

namespace Fabric.Transport.Tests;

/// <summary>What the shm backend promises beyond the conformance suite: file modes, the header, bad files.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ShmStoreTests
{
    private static string NewPath() => $"/dev/shm/fabric-test-store-{Guid.NewGuid():N}";

    [Fact]
    public async Task Create_FileAndControlSocketAreOwnerOnly_AndTheFileHoldsTheHeaderOnly_WithNoKey()
    {
        const ulong Key = 0x1122334455667788;
        var path = NewPath();
        using var store = new ShmRegionStore(path, [new RegionSpec(5, 10_000, Key), new RegionSpec(6, 3, Key + 1)]);
        await using var server = await FabricServers.StartAsync(store.Endpoint, store);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(store.ControlPath));
        Assert.Equal(path + ".ctl", store.ControlPath);

        var bytes = await File.ReadAllBytesAsync(path);
        Span<byte> key = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(key, Key);
        Assert.Equal(-1, bytes.AsSpan().IndexOf(key));
        Assert.Equal("FABRSHM1"u8.ToArray(), bytes[..8]);
        Assert.Equal(4096, bytes.LongLength);
        Assert.True(store.MappedBytes > 4096 + 10_000);
        foreach (var region in store.Regions)
            Assert.Equal(0, (long)(nint)GetAddress(region) % 4096);
    }

    private static unsafe nint GetAddress(ExportedRegion region) => (nint)region.BaseAddress;

    [Fact]
    public void Dispose_DeletesTheFile()
    {
        var path = NewPath();
        var store = new ShmRegionStore(path, [new RegionSpec(1, 4096, 1)]);
        Assert.True(File.Exists(path));
        store.Dispose();
        Assert.False(File.Exists(path));
        File.Delete(path + ".ctl");
    }

    [Fact]
    public async Task Connect_FileWithoutFabricHeader_FailsWithOneSentenceNamingTheEndpoint()
    {
        var path = NewPath();
        await File.WriteAllBytesAsync(path, [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 7))]);
        try
        {
            var error = await Assert.ThrowsAsync<EndpointException>(async () => await FabricTransports.ConnectAsync("shm://" + path));
            Assert.Contains("shm://" + path, error.Message, StringComparison.Ordinal);
            Assert.Contains("no Fabric header", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Connect_TinyFile_FailsWithOneSentence()
    {
        var path = NewPath();
        await File.WriteAllBytesAsync(path, [1, 2, 3]);
        try
        {
            var error = await Assert.ThrowsAsync<EndpointException>(async () => await FabricTransports.ConnectAsync("shm://" + path));
            Assert.Contains("no Fabric header", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Connect_FileWhoseServerIsNotRunning_FailsNamingTheEndpoint()
    {
        var path = NewPath();
        using var store = new ShmRegionStore(path, [new RegionSpec(1, 4096, 1)]);
        var error = await Assert.ThrowsAsync<EndpointException>(async () => await FabricTransports.ConnectAsync(store.Endpoint));
        Assert.Contains(store.Endpoint.ToString(), error.Message, StringComparison.Ordinal);
        Assert.Contains("server", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartServer_ShmEndpointWithAnotherStore_FailsWithEndpointException()
    {
        using var host = new HostRegionStore([new RegionSpec(1, 4096, 1)]);
        var error = await Assert.ThrowsAsync<EndpointException>(() => FabricServers.StartAsync(FabricEndpoint.Parse("shm:///dev/shm/fabric-test-nope"), host));
        Assert.Contains("ShmRegionStore", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_OnALiveStoresPath_IsRefused_AndAfterItsDisposeOldClientsHearPeerGone()
    {
        var path = NewPath();
        var first = new ShmRegionStore(path, [new RegionSpec(1, 4096, 1)]);
        first.Find(1)!.Slice(0, 4096).Fill(0x11);
        var server = await FabricServers.StartAsync(first.Endpoint, first);
        await using var old = await FabricTransports.ConnectAsync(first.Endpoint);
        var buffer = new byte[4096];
        Assert.Equal(ReadStatus.Ok, await old.ReadAsync(new ReadRequest(1, 1, 0, buffer)));

        var refused = Assert.Throws<EndpointException>(() => new ShmRegionStore(path, [new RegionSpec(1, 8192, 2)]));
        Assert.Equal($"{path} is in use by a running pool; stop it or choose another path.", refused.Message);
        await server.DisposeAsync();
        first.Dispose();

        // The old file was unlinked, not truncated: the old client's mapping stays valid (no SIGBUS) and it hears PeerGone.
        using var second = new ShmRegionStore(path, [new RegionSpec(1, 8192, 2)]);
        await using var secondServer = await FabricServers.StartAsync(second.Endpoint, second);
        await using var fresh = await FabricTransports.ConnectAsync(second.Endpoint);
        Assert.Equal(ReadStatus.Ok, await fresh.ReadAsync(new ReadRequest(1, 2, 4096, buffer)));
        Assert.Equal(ReadStatus.PeerGone, await old.ReadAsync(new ReadRequest(1, 1, 0, buffer)));
    }

    [Fact]
    public void Create_OnAFileThatIsNotABank_IsRefused_AndTheFileIsUntouched()
    {
        var path = NewPath();
        File.WriteAllText(path, "weights");
        var refused = Assert.Throws<EndpointException>(() => new ShmRegionStore(path, [new RegionSpec(1, 4096, 1)]));
        Assert.Equal($"{path} exists and is not a Fabric shm bank; remove it or choose another path.", refused.Message);
        Assert.Equal("weights", File.ReadAllText(path));
        Assert.False(File.Exists(path + ".ctl"));
        File.Delete(path);
    }

    [Fact]
    public void Create_WithAFileAtTheControlSocketPath_IsRefused_AndNothingIsCreated()
    {
        var path = NewPath();
        File.WriteAllText(path + ".ctl", "notes");
        var refused = Assert.Throws<EndpointException>(() => new ShmRegionStore(path, [new RegionSpec(1, 4096, 1)]));
        Assert.Equal($"{path}.ctl exists and is not a socket; remove it or choose another path.", refused.Message);
        Assert.Equal("notes", File.ReadAllText(path + ".ctl"));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task FirstReads_AskTheServerOncePerRegion_AndARefusalIsAskedAgain()
    {
        var asked = 0;
        var allowed = false;
        var path = NewPath();
        using var store = new ShmRegionStore(path, [new RegionSpec(1, 1 << 20, 7), new RegionSpec(2, 4096, 8)]);
        await using var server = await FabricServers.StartAsync(store.Endpoint, store, new FabricServerOptions
        {
            Authorize = (_, region) =>
            {
                Interlocked.Increment(ref asked);
                return region.Id == 1 || Volatile.Read(ref allowed);
            },
        });
        await using var client = await FabricTransports.ConnectAsync(store.Endpoint);
        using var destination = new NativeBuffer(100 * 1024);
        var reads = Enumerable.Range(0, 100)
            .Select(i => client.ReadAsync(new ReadRequest(1, 7, i * 1024, destination.Memory.Slice(i * 1024, 1024))).AsTask())
            .ToArray();
        Assert.All(await Task.WhenAll(reads), s => Assert.Equal(ReadStatus.Ok, s));
        Assert.Equal(1, Volatile.Read(ref asked));

        Assert.Equal(ReadStatus.AccessDenied, await client.ReadAsync(new ReadRequest(2, 8, 0, new byte[16])));
        Volatile.Write(ref allowed, true);
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(2, 8, 0, new byte[16])));
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(2, 8, 16, new byte[16])));
        Assert.Equal(3, Volatile.Read(ref asked));
    }
}
