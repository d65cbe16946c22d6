using System.Net.Sockets;
using Fabric.Common;
using Fabric.Pool.Protocol;
using Fabric.Transport;

namespace Fabric.EndToEnd.Tests;

/// <summary>A real fabric-pool process against clients that flood it, never read, or never authenticate.</summary>
public sealed class PoolSessionLimitsTests : IClassFixture<PoolModel>
{
    private readonly PoolModel _model;

    public PoolSessionLimitsTests(PoolModel model) => _model = model;

    private string ServeArgs() => $"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --tokens {_model.TokensFile}";

    /// <summary>Hello, an Authenticate with <paramref name="token"/>, then <paramref name="requests"/> control frames of an unknown type.</summary>
    private static byte[] Flood(string token, int requests)
    {
        var auth = ControlMessage.Create(PoolMessageTypes.Authenticate, new AuthenticateRequest(token)).Body.ToArray();
        var frames = new byte[32 + 16 + auth.Length + (requests * 17)];
        BitConverter.TryWriteBytes(frames.AsSpan(0), 16u);
        frames[4] = 1; // hello
        BitConverter.TryWriteBytes(frames.AsSpan(16), 0x52424146u);
        BitConverter.TryWriteBytes(frames.AsSpan(20), (ushort)1);
        BitConverter.TryWriteBytes(frames.AsSpan(32), (uint)auth.Length);
        frames[36] = 5; // control
        BitConverter.TryWriteBytes(frames.AsSpan(38), PoolMessageTypes.Authenticate);
        BitConverter.TryWriteBytes(frames.AsSpan(40), 1UL);
        auth.CopyTo(frames.AsSpan(48));
        for (var i = 0; i < requests; i++)
        {
            var at = 48 + auth.Length + (i * 17);
            BitConverter.TryWriteBytes(frames.AsSpan(at), 1u);
            frames[at + 4] = 5; // control
            BitConverter.TryWriteBytes(frames.AsSpan(at + 6), (ushort)177);
            BitConverter.TryWriteBytes(frames.AsSpan(at + 8), (ulong)i + 2);
            frames[at + 16] = 0xC0;
        }
        return frames;
    }

    [Fact]
    public async Task ControlFlood_WhoseRepliesAreNeverRead_KeepsThePoolsMemoryBounded_AndOthersServed()
    {
        await using var pool = await PoolProcess.StartAsync(ServeArgs(), endpoints: 1);
        var tcp = FabricEndpoint.Parse(pool.Endpoint("tcp"));
        await using (var warm = await PoolConnection.ConnectAsync(tcp, "alice:wonderland"))
        {
        }
        var before = pool.Footprint();

        // 2M requests (34 MB); unbounded, each would cost the pool a task and a queued reply (about 1 GB in all).
        var frames = Flood("alice:wonderland", 2_000_000);
        using var flooder = new TcpClient { ReceiveBufferSize = 4096 };
        await flooder.ConnectAsync(tcp.Host, tcp.Port);
        using var stop = new CancellationTokenSource();
        var writing = flooder.GetStream().WriteAsync(frames, stop.Token).AsTask();
        var finished = await Task.WhenAny(writing, Task.Delay(TimeSpan.FromSeconds(6))) == writing;
        var during = pool.Footprint();

        // The pool stopped reading: the client could not hand over all its frames.
        Assert.False(finished, "the pool read every frame of a client that never reads its replies");
        Assert.True(during.RssBytes - before.RssBytes < 128L * 1024 * 1024,
            $"the pool grew from {before.RssBytes >> 20} MiB to {during.RssBytes >> 20} MiB");

        // Others are served meanwhile.
        await using var other = await PoolConnection.ConnectAsync(tcp, "bob:builder");
        var expert = other.Catalog.Experts[0];
        using var buffer = new NativeBuffer(expert.Length);
        Assert.Equal(ReadStatus.Ok, await other.Transport.ReadAsync(new ReadRequest(expert.RegionId, other.Catalog.GetRegion(expert.RegionId).Key, expert.Offset, buffer.Memory)));
        await stop.CancelAsync();
        flooder.Close();
        await Assert.ThrowsAnyAsync<Exception>(() => writing);
    }

    [Fact]
    public async Task Unauthenticated_ControlFlood_IsCutOffAtTheFirstFrameThatIsNotAnAuthentication()
    {
        await using var pool = await PoolProcess.StartAsync(ServeArgs(), endpoints: 1);
        var tcp = FabricEndpoint.Parse(pool.Endpoint("tcp"));
        var before = pool.Footprint();
        using var flooder = new TcpClient();
        await flooder.ConnectAsync(tcp.Host, tcp.Port);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var writing = flooder.GetStream().WriteAsync(Flood("alice:rabbit", 1_000_000), timeout.Token).AsTask();

        // The refusal of the token, the refusal of the first other frame, then the end of the session.
        var received = new MemoryStream();
        var sink = new byte[4096];
        try
        {
            int n;
            while ((n = await flooder.GetStream().ReadAsync(sink, timeout.Token)) > 0)
                received.Write(sink, 0, n);
        }
        catch (IOException)
        {
        }
        await Assert.ThrowsAnyAsync<Exception>(() => writing);

        Assert.False(timeout.IsCancellationRequested, "the pool kept an unauthenticated flooder's session open");
        Assert.Contains("authenticate before sending control message type 177; the session is closed", System.Text.Encoding.UTF8.GetString(received.ToArray()), StringComparison.Ordinal);
        Assert.True(pool.Footprint().RssBytes - before.RssBytes < 64L * 1024 * 1024);
    }

    [Fact]
    public async Task Unauthenticated_CatalogRequest_IsRefused_AndClosesTheSession()
    {
        await using var pool = await PoolProcess.StartAsync(ServeArgs(), endpoints: 1);
        await using var anonymous = await FabricTransports.ConnectAsync(pool.Endpoint("tcp"));

        var refused = await Assert.ThrowsAsync<ControlException>(() => anonymous.CallAsync<CatalogRequest, CatalogReply>(PoolMessageTypes.Catalog, new CatalogRequest()));

        Assert.Equal(ControlErrorCode.Unauthorized, refused.Code);
        Assert.EndsWith("the session is closed.", refused.Message, StringComparison.Ordinal);
        Assert.Equal(ReadStatus.PeerGone, await anonymous.ReadAsync(new ReadRequest(0, 0, 0, new byte[16])));
    }

    [Fact]
    public async Task ThreeFailedAuthentications_CloseTheSession()
    {
        await using var pool = await PoolProcess.StartAsync(ServeArgs(), endpoints: 1);
        await using var client = await FabricTransports.ConnectAsync(pool.Endpoint("tcp"));

        for (var i = 1; i <= 3; i++)
        {
            var refused = await Assert.ThrowsAsync<ControlException>(() => client.CallAsync<AuthenticateRequest, AuthenticateReply>(PoolMessageTypes.Authenticate, new AuthenticateRequest("alice:guess" + i)));
            Assert.Equal(ControlErrorCode.Unauthorized, refused.Code);
            Assert.Equal(i == 3, refused.Message.Contains("the session is closed", StringComparison.Ordinal));
        }

        await Assert.ThrowsAsync<PeerGoneException>(() => client.CallAsync<AuthenticateRequest, AuthenticateReply>(PoolMessageTypes.Authenticate, new AuthenticateRequest("alice:wonderland")));
    }
}
