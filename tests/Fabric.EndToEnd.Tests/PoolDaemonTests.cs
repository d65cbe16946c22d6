using System.IO.Hashing;
using System.Net.Sockets;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Transport;

namespace Fabric.EndToEnd.Tests;

/// <summary>A real fabric-pool process on loopback, read by real tcp and shm clients.</summary>
public sealed class PoolDaemonTests : IClassFixture<PoolModel>
{
    private readonly PoolModel _model;

    public PoolDaemonTests(PoolModel model) => _model = model;

    private string ServeArgs(string shm, bool metrics = false) =>
        $"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --shm {shm} --tokens {_model.TokensFile}" + (metrics ? " --metrics http://127.0.0.1:0" : "");

    [Fact]
    public async Task EveryExpertAndDenseTensor_ReadOverTcpAndShm_MatchesTheSafetensorsFile()
    {
        var checkpoint = Checkpoint.Open(_model.ModelDirectory);
        await using var pool = await PoolProcess.StartAsync(ServeArgs(_model.NewShmPath(), metrics: true), endpoints: 2, metrics: true);
        long served = 0;
        foreach (var endpoint in new[] { pool.Endpoint("tcp"), pool.Endpoint("shm") })
        {
            await using var client = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(endpoint), "alice:wonderland");
            Assert.Equal("alice", client.Tenant);
            Assert.Equal(checkpoint.Config, client.Catalog.Model);
            Assert.Equal(checkpoint.Experts.Count, client.Catalog.Experts.Length);
            using var buffer = new NativeBuffer(client.Catalog.Experts.Max(e => e.Length) + client.Catalog.Dense.Max(d => d.Length));
            foreach (var expert in client.Catalog.Experts)
            {
                Assert.Equal(ReadStatus.Ok, await ReadExpertAsync(client, expert, buffer.Memory));
                var bytes = buffer.Span[..(int)expert.Length];
                var source = checkpoint[expert.Layer, expert.Expert];
                Assert.Equal(Concat(FileBytes(source.Gate), FileBytes(source.Up), FileBytes(source.Down)), bytes.ToArray());
                Assert.True(Verify(bytes, expert.Checksum), $"checksum of expert ({expert.Layer}, {expert.Expert}) over {endpoint}");
                Assert.Equal(FileBytes(source.Down), bytes.Slice((int)expert.Down.Offset, (int)expert.Down.Length).ToArray());
                served += endpoint.StartsWith("tcp", StringComparison.Ordinal) ? expert.Length : 0;
            }
            foreach (var dense in client.Catalog.Dense)
            {
                Assert.Equal(ReadStatus.Ok, await client.Transport.ReadAsync(new ReadRequest(dense.RegionId, client.Catalog.GetRegion(dense.RegionId).Key, dense.Offset, buffer.Memory[..(int)dense.Length])));
                Assert.Equal(FileBytes(checkpoint.FindDense(dense.Name)!), buffer.Span[..(int)dense.Length].ToArray());
                Assert.True(Verify(buffer.Span[..(int)dense.Length], dense.Checksum));
                served += endpoint.StartsWith("tcp", StringComparison.Ordinal) ? dense.Length : 0;
            }
        }

        using var http = new HttpClient();
        var metrics = await http.GetStringAsync(pool.MetricsUrl);
        Assert.Contains($"fabric_pool_read_bytes_total{{tenant=\"alice\",transport=\"tcp\"}} {served}", metrics, StringComparison.Ordinal);
        Assert.Contains("fabric_pool_resident_bytes ", metrics, StringComparison.Ordinal);
        Assert.Equal("ok\n", await http.GetStringAsync(pool.MetricsUrl.Replace("/metrics", "/healthz", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task WrongToken_GetsUnauthorized_NoCatalog_AndReadsAreRefused()
    {
        await using var pool = await PoolProcess.StartAsync(ServeArgs(_model.NewShmPath()), endpoints: 2);
        foreach (var endpoint in pool.Endpoints)
        {
            var refused = await Assert.ThrowsAsync<ControlException>(() => PoolConnection.ConnectAsync(FabricEndpoint.Parse(endpoint), "alice:rabbit"));
            Assert.Equal(ControlErrorCode.Unauthorized, refused.Code);
            Assert.StartsWith("unauthorized", refused.Message, StringComparison.Ordinal);

            // Even with the right region key, a session that has not authenticated reads nothing.
            await using var good = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(endpoint), "bob:builder");
            var expert = good.Catalog.Experts[0];
            await using var anonymous = await FabricTransports.ConnectAsync(endpoint);
            var noCatalog = await Assert.ThrowsAsync<ControlException>(() => anonymous.CallAsync<CatalogRequest, CatalogReply>(PoolMessageTypes.Catalog, new CatalogRequest()));
            Assert.Equal(ControlErrorCode.Unauthorized, noCatalog.Code);
            using var buffer = new NativeBuffer(expert.Length);
            var status = await anonymous.ReadAsync(ExpertRequest(good, expert, buffer.Memory));
            Assert.NotEqual(ReadStatus.Ok, status);
        }
    }

    [Fact]
    public async Task MalformedFrames_UnknownTypes_AndReadsOutsideRegions_AreRefused_WhileOthersKeepReading()
    {
        await using var pool = await PoolProcess.StartAsync(ServeArgs(_model.NewShmPath()), endpoints: 2);
        var tcp = FabricEndpoint.Parse(pool.Endpoint("tcp"));
        await using var client = await PoolConnection.ConnectAsync(tcp, "alice:wonderland");
        var expert = client.Catalog.Experts[^1];
        using var buffer = new NativeBuffer(expert.Length);

        // Garbage, then a valid hello followed by an oversized control frame.
        using (var garbage = new TcpClient())
        {
            await garbage.ConnectAsync(tcp.Host, tcp.Port);
            await garbage.GetStream().WriteAsync(Enumerable.Range(0, 256).Select(i => (byte)(i * 37)).ToArray());
        }
        using (var oversized = new TcpClient())
        {
            await oversized.ConnectAsync(tcp.Host, tcp.Port);
            var frames = new byte[32 + 16];
            BitConverter.TryWriteBytes(frames.AsSpan(0), 16u);
            frames[4] = 1; // hello
            BitConverter.TryWriteBytes(frames.AsSpan(8), 1UL);
            BitConverter.TryWriteBytes(frames.AsSpan(16), 0x52424146u);
            BitConverter.TryWriteBytes(frames.AsSpan(20), (ushort)1);
            BitConverter.TryWriteBytes(frames.AsSpan(32), 0x7FFF_FFFFu);
            frames[36] = 5; // control
            BitConverter.TryWriteBytes(frames.AsSpan(38), (ushort)100);
            await oversized.GetStream().WriteAsync(frames);
            var sink = new byte[4096];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                // The server closes (or resets) the connection instead of reading 2 GiB.
                while (await oversized.GetStream().ReadAsync(sink, timeout.Token) > 0)
                {
                }
            }
            catch (IOException)
            {
            }
        }

        var unknown = await Assert.ThrowsAsync<ControlException>(() => client.Transport.CallAsync(new ControlMessage(177, new byte[] { 0xC0 })));
        Assert.Equal(ControlErrorCode.UnknownMessageType, unknown.Code);
        var region = client.Catalog.GetRegion(expert.RegionId);
        Assert.Equal(ReadStatus.OutOfRange, await client.Transport.ReadAsync(new ReadRequest(region.Id, region.Key, region.Length - 10, buffer.Memory)));
        Assert.Equal(ReadStatus.UnknownRegion, await client.Transport.ReadAsync(new ReadRequest(999, region.Key, 0, buffer.Memory)));

        Assert.Equal(ReadStatus.Ok, await ReadExpertAsync(client, expert, buffer.Memory));
        Assert.True(Verify(buffer.Span, expert.Checksum));
        await using var second = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(pool.Endpoint("shm")), "bob:builder");
        Assert.Equal(ReadStatus.Ok, await ReadExpertAsync(second, expert, buffer.Memory));
        Assert.False(pool.HasExited);
    }

    [Fact]
    public async Task Sigterm_WhileAClientNeverReadsItsReplies_DropsItAfterTheDrainTimeout_AndExitsZero()
    {
        await using var pool = await PoolProcess.StartAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --drain-timeout 2s", endpoints: 1);
        var tcp = FabricEndpoint.Parse(pool.Endpoint("tcp"));
        var body = ControlMessage.Create(PoolMessageTypes.Catalog, new CatalogRequest()).Body.ToArray();
        const int Requests = 100_000;
        var frames = new byte[32 + (Requests * (16 + body.Length))];
        BitConverter.TryWriteBytes(frames.AsSpan(0), 16u);
        frames[4] = 1; // hello
        BitConverter.TryWriteBytes(frames.AsSpan(8), 1UL);
        BitConverter.TryWriteBytes(frames.AsSpan(16), 0x52424146u);
        BitConverter.TryWriteBytes(frames.AsSpan(20), (ushort)1);
        for (var i = 0; i < Requests; i++)
        {
            var at = 32 + (i * (16 + body.Length));
            BitConverter.TryWriteBytes(frames.AsSpan(at), (uint)body.Length);
            frames[at + 4] = 5; // control
            BitConverter.TryWriteBytes(frames.AsSpan(at + 6), PoolMessageTypes.Catalog);
            BitConverter.TryWriteBytes(frames.AsSpan(at + 8), (ulong)i + 2);
            body.CopyTo(frames.AsSpan(at + 16));
        }
        using var stuck = new TcpClient { ReceiveBufferSize = 4096 };
        await stuck.ConnectAsync(tcp.Host, tcp.Port);
        using var stopWriting = new CancellationTokenSource();
        // The writes stall once the server's replies fill both socket buffers; they are never awaited to the end.
        _ = stuck.GetStream().WriteAsync(frames, stopWriting.Token).AsTask().ContinueWith(static t => t.Exception, TaskScheduler.Default);
        await Task.Delay(TimeSpan.FromSeconds(2));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var exit = await pool.TerminateAsync(TimeSpan.FromSeconds(20));
        await stopWriting.CancelAsync();

        Assert.Equal(0, exit);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(6));
        Assert.Contains("dropped 1 session(s) after the drain deadline (2 s)", pool.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("cancelled", pool.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_WithADrainTimeoutThatIsNotADuration_ExitsTwoWithOneSentence()
    {
        var (code, _, stderr) = await PoolProcess.RunAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --drain-timeout soon");

        Assert.Equal(2, code);
        Assert.Equal("fabric-pool: --drain-timeout 'soon' is not a positive duration; give one such as 10s, 500ms or 2m.", stderr.Trim());
    }

    [Fact]
    public async Task Listen_OnAPortInUse_ExitsTwoWithOneSentence_AndTheFirstPoolKeepsServing()
    {
        await using var pool = await PoolProcess.StartAsync(ServeArgs(_model.NewShmPath()), endpoints: 2);
        var tcp = FabricEndpoint.Parse(pool.Endpoint("tcp"));

        var (code, _, stderr) = await PoolProcess.RunAsync($"serve --model {_model.ModelDirectory} --listen {tcp} --tokens {_model.TokensFile}");

        Assert.Equal(2, code);
        Assert.Equal($"fabric-pool: {tcp} is already in use by another process.", stderr.Trim());
        Assert.False(pool.HasExited);
        for (var i = 0; i < 8; i++)
        {
            await using var client = await PoolConnection.ConnectAsync(tcp, "alice:wonderland");
            var expert = client.Catalog.Experts[i];
            using var buffer = new NativeBuffer(expert.Length);
            Assert.Equal(ReadStatus.Ok, await ReadExpertAsync(client, expert, buffer.Memory));
        }
    }

    [Fact]
    public async Task NilBodies_AreMalformedMessages_AndTheSessionStaysUsable()
    {
        await using var pool = await PoolProcess.StartAsync(ServeArgs(_model.NewShmPath()), endpoints: 2);
        var tcp = FabricEndpoint.Parse(pool.Endpoint("tcp"));
        await using var client = await PoolConnection.ConnectAsync(tcp, "alice:wonderland");
        var expert = client.Catalog.Experts[0];
        using var buffer = new NativeBuffer(expert.Length);

        // A nil body for the catalog, a nil body and a nil record field for Authenticate (which end the session's rights).
        foreach (var (type, body) in new (ushort, byte[])[] { (PoolMessageTypes.Catalog, [0xC0]), (PoolMessageTypes.Authenticate, [0xC0]), (PoolMessageTypes.Authenticate, [0x91, 0xC0]) })
        {
            var malformed = await Assert.ThrowsAsync<ControlException>(() => client.Transport.CallAsync(new ControlMessage(type, body)));
            Assert.Equal(ControlErrorCode.MalformedMessage, malformed.Code);
            Assert.Contains("nil", malformed.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("Object reference", malformed.Message, StringComparison.Ordinal);
        }

        var again = await client.Transport.CallAsync<AuthenticateRequest, AuthenticateReply>(PoolMessageTypes.Authenticate, new AuthenticateRequest("alice:wonderland"));
        Assert.Equal("alice", again.Tenant);
        Assert.Equal(ReadStatus.Ok, await ReadExpertAsync(client, expert, buffer.Memory));
        Assert.False(pool.HasExited);
    }

    [Fact]
    public async Task FailedReauthentication_EndsTheSessionsRights_AndItsNextRequestClosesIt()
    {
        await using var pool = await PoolProcess.StartAsync(ServeArgs(_model.NewShmPath()), endpoints: 2);
        await using var client = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(pool.Endpoint("tcp")), "alice:wonderland");
        var expert = client.Catalog.Experts[0];
        using var buffer = new NativeBuffer(expert.Length);
        Assert.Equal(ReadStatus.Ok, await ReadExpertAsync(client, expert, buffer.Memory));

        var refused = await Assert.ThrowsAsync<ControlException>(() => client.Transport.CallAsync<AuthenticateRequest, AuthenticateReply>(PoolMessageTypes.Authenticate, new AuthenticateRequest("alice:rabbit")));
        Assert.Equal(ControlErrorCode.Unauthorized, refused.Code);

        // Unauthenticated again, the session may only authenticate: the read is refused and the session closed.
        Assert.Equal(ReadStatus.AccessDenied, await ReadExpertAsync(client, expert, buffer.Memory));
        await Assert.ThrowsAsync<PeerGoneException>(() => client.Transport.CallAsync<CatalogRequest, CatalogReply>(PoolMessageTypes.Catalog, new CatalogRequest()));
    }

    [Fact]
    public async Task Sigterm_WithReadsInFlight_EndsCleanly()
    {
        var shm = _model.NewShmPath();
        var pool = await PoolProcess.StartAsync(ServeArgs(shm), endpoints: 2);
        await using var _ = pool;
        await using var client = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(pool.Endpoint("tcp")), "alice:wonderland");
        var experts = client.Catalog.Experts;
        long ok = 0;
        long corrupt = 0;
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 8).Select(r => Task.Run(async () =>
        {
            using var buffer = new NativeBuffer(experts.Max(e => e.Length));
            for (var i = r; !stop.IsCancellationRequested; i++)
            {
                var expert = experts[i % experts.Length];
                var status = await ReadExpertAsync(client, expert, buffer.Memory);
                if (status != ReadStatus.Ok)
                    return status;
                Interlocked.Increment(ref ok);
                if (!Verify(buffer.Span[..(int)expert.Length], expert.Checksum))
                    Interlocked.Increment(ref corrupt);
            }
            return ReadStatus.Ok;
        })).ToList();

        while (Interlocked.Read(ref ok) < 200)
            await Task.Delay(10);
        var exit = await pool.TerminateAsync(TimeSpan.FromSeconds(30));
        stop.Cancel();
        var endings = await Task.WhenAll(readers);

        Assert.Equal(0, exit);
        Assert.Equal(0, Interlocked.Read(ref corrupt));
        Assert.All(endings, s => Assert.True(s is ReadStatus.Ok or ReadStatus.PeerGone, $"a reader ended with {s}"));
        Assert.False(File.Exists(shm), "the shm file should be removed on a clean exit");
    }

    [Fact]
    public async Task Inspect_PrintsLayoutWithoutServing()
    {
        var (code, stdout, stderr) = await PoolProcess.RunAsync($"inspect --model {_model.ModelDirectory}");
        Assert.True(code == 0, stderr);
        Assert.Contains("experts   32 in 1 region(s)", stdout, StringComparison.Ordinal);
        Assert.Contains("4 layers, 8 experts/layer, top-2", stdout, StringComparison.Ordinal);
        Assert.Contains("48 KiB", stdout, StringComparison.Ordinal);
    }

    /// <summary>The raw read of the whole of <paramref name="expert"/> as <paramref name="connection"/>'s catalog places it.</summary>
    private static ReadRequest ExpertRequest(PoolConnection connection, ExpertEntry expert, Memory<byte> destination) =>
        new(expert.RegionId, connection.Catalog.GetRegion(expert.RegionId).Key, expert.Offset, destination[..checked((int)expert.Length)]);

    private static ValueTask<ReadStatus> ReadExpertAsync(PoolConnection connection, ExpertEntry expert, Memory<byte> destination) =>
        connection.Transport.ReadAsync(ExpertRequest(connection, expert, destination));

    private static bool Verify(ReadOnlySpan<byte> bytes, ulong checksum) => XxHash64.HashToUInt64(bytes) == checksum;

    private static byte[] FileBytes(TensorEntry t)
    {
        var bytes = new byte[t.Length];
        using var h = File.OpenHandle(t.File);
        RandomAccess.Read(h, bytes, t.Offset);
        return bytes;
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}
