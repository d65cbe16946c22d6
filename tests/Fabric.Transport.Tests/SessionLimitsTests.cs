using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Fabric.Transport.Host;
using Fabric.Transport.Tcp;
using Fabric.Transport.Wire;

namespace Fabric.Transport.Tests;

/// <summary>A tcp server against clients that cost it memory or time: floods, silence, frames that never finish.</summary>
public sealed class SessionLimitsTests
{
    private const ushort AuthType = 200;
    private const ushort OtherType = 201;

    private static byte[] Hello()
    {
        var hello = new byte[FrameHeader.Size + HelloFrame.Size];
        new FrameHeader(HelloFrame.Size, FrameKind.Hello, 0, 0, 0).Write(hello);
        new HelloFrame(HelloFrame.FabricMagic, HelloFrame.CurrentVersion, 0, 0).Write(hello.AsSpan(FrameHeader.Size));
        return hello;
    }

    private static byte[] Control(ushort type, ulong id, int bodyLength)
    {
        var frame = new byte[FrameHeader.Size + bodyLength];
        new FrameHeader((uint)bodyLength, FrameKind.Control, 0, type, id).Write(frame);
        return frame;
    }

    private static async Task<(TcpFabricServer Server, HostRegionStore Store)> StartAsync(FabricServerOptions options)
    {
        var store = new HostRegionStore([new RegionSpec(1, 4096, 1)]);
        return (await TcpFabricServer.StartAsync(FabricEndpoint.Parse("tcp://127.0.0.1:0"), store, options), store);
    }

    private static async Task<Socket> ConnectAsync(TcpFabricServer server)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, server.Endpoint.Port);
        return socket;
    }

    /// <summary>Reads and discards until the server closes; the time that took, or null if it stayed open for <paramref name="limit"/>.</summary>
    private static async Task<TimeSpan?> TimeUntilClosedAsync(Socket socket, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        var sink = new byte[64 * 1024];
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            while (await socket.ReceiveAsync(sink, SocketFlags.None, timeout.Token) > 0)
            {
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (SocketException)
        {
        }
        return clock.Elapsed;
    }

    [Fact]
    public async Task ControlFlood_WithRepliesNeverRead_StopsBeingReadAtTheInFlightBound()
    {
        var handler = new BlockingHandler();
        var (server, store) = await StartAsync(new FabricServerOptions { ControlHandler = handler, Limits = new SessionLimits { MaxInFlightControls = 4 } });
        await using var _ = server;
        using var __ = store;
        using var socket = await ConnectAsync(server);

        await socket.SendAsync(Hello());
        await ReceiveExactlyAsync(socket, new byte[FrameHeader.Size + HelloFrame.Size]);
        for (var i = 0; i < 100; i++)
            await socket.SendAsync(Control(OtherType, (ulong)i + 1, 1));
        await Task.Delay(500);

        // Only as many requests as there are slots reach the handler; the rest wait in the socket, unread.
        Assert.Equal(4, handler.Started);
        handler.Release();
        var reply = new byte[FrameHeader.Size];
        for (var i = 0; i < 100; i++)
        {
            await ReceiveExactlyAsync(socket, reply);
            var header = FrameHeader.Parse(reply);
            Assert.Equal(FrameKind.ControlReply, header.Kind);
            await ReceiveExactlyAsync(socket, new byte[header.BodyLength]);
        }
        Assert.Equal(100, handler.Started);
    }

    [Fact]
    public async Task SilentConnection_IsClosedAfterTheUnauthenticatedIdleTimeout()
    {
        var (server, store) = await StartAsync(new FabricServerOptions { Limits = new SessionLimits { UnauthenticatedIdleTimeout = TimeSpan.FromMilliseconds(300) } });
        await using var _ = server;
        using var __ = store;
        using var socket = await ConnectAsync(server);

        var closedAfter = await TimeUntilClosedAsync(socket, TimeSpan.FromSeconds(5));

        Assert.NotNull(closedAfter);
        Assert.InRange(closedAfter.Value, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task PartialFrame_IsClosedAfterTheFrameTimeout_WhileAnIdleAuthenticatedSessionStays()
    {
        var (server, store) = await StartAsync(new FabricServerOptions { Limits = new SessionLimits { FrameTimeout = TimeSpan.FromMilliseconds(300) } });
        await using var _ = server;
        using var __ = store;
        using var slow = await ConnectAsync(server);
        using var idle = await ConnectAsync(server);
        await idle.SendAsync(Hello());
        await slow.SendAsync(Hello());
        // A header that announces 1 MiB, then a trickle that never completes it.
        await slow.SendAsync(Control(OtherType, 1, 1024 * 1024).AsMemory(0, FrameHeader.Size + 100));
        var closing = TimeUntilClosedAsync(slow, TimeSpan.FromSeconds(5));
        // Bytes that keep arriving do not extend the frame's deadline.
        try
        {
            for (var i = 0; i < 3 && !closing.IsCompleted; i++)
            {
                await Task.Delay(60);
                await slow.SendAsync(new byte[10]);
            }
        }
        catch (SocketException)
        {
            // Closed already (a slow machine).
        }

        var closedAfter = await closing;

        Assert.NotNull(closedAfter);
        Assert.InRange(closedAfter.Value, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(3));
        Assert.Null(await TimeUntilClosedAsync(idle, TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public async Task AuthenticatedSession_IsClosedAfterTheIdleTimeout_WhenOneIsSet()
    {
        var (server, store) = await StartAsync(new FabricServerOptions { Limits = new SessionLimits { IdleTimeout = TimeSpan.FromMilliseconds(300) } });
        await using var _ = server;
        using var __ = store;
        await using var client = await FabricTransports.ConnectAsync(server.Endpoint);
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(1, store.Find(1)!.Key, 0, new byte[16])));

        await Task.Delay(1500);

        Assert.Equal(ReadStatus.PeerGone, await client.ReadAsync(new ReadRequest(1, store.Find(1)!.Key, 0, new byte[16])));
    }

    [Theory]
    [InlineData(OtherType, 8)]
    [InlineData(AuthType, 1024 * 1024)]
    public async Task Unauthenticated_AnythingButASmallAuthentication_IsRefusedAndClosesTheSession(ushort type, int bodyLength)
    {
        var handler = new BlockingHandler();
        handler.Release();
        var (server, store) = await StartAsync(new FabricServerOptions
        {
            ControlHandler = handler,
            IsAuthenticated = static _ => false,
            AuthenticationTypes = new HashSet<ushort> { AuthType },
        });
        await using var _ = server;
        using var __ = store;
        using var socket = await ConnectAsync(server);
        await socket.SendAsync(Hello());
        await ReceiveExactlyAsync(socket, new byte[FrameHeader.Size + HelloFrame.Size]);

        await socket.SendAsync(Control(type, 7, bodyLength).AsMemory(0, Math.Min(FrameHeader.Size + bodyLength, 4096)));
        var reply = new byte[FrameHeader.Size];
        await ReceiveExactlyAsync(socket, reply);
        var header = FrameHeader.Parse(reply);
        var body = new byte[header.BodyLength];
        await ReceiveExactlyAsync(socket, body);
        var error = Fabric.Transport.Control.ControlDispatcher.ToException(new ControlMessage(header.Type, body));

        Assert.Equal(7UL, header.RequestId);
        Assert.Equal(ControlErrorCode.Unauthorized, error.Code);
        Assert.Contains("the session is closed", error.Message, StringComparison.Ordinal);
        Assert.NotNull(await TimeUntilClosedAsync(socket, TimeSpan.FromSeconds(5)));
        Assert.Equal(0, handler.Started);
    }

    [Fact]
    public async Task Unauthenticated_AuthenticationRequests_AreAnsweredOneAtATime()
    {
        var handler = new BlockingHandler();
        var (server, store) = await StartAsync(new FabricServerOptions
        {
            ControlHandler = handler,
            IsAuthenticated = static _ => false,
            AuthenticationTypes = new HashSet<ushort> { AuthType },
        });
        await using var _ = server;
        using var __ = store;
        using var socket = await ConnectAsync(server);
        await socket.SendAsync(Hello());
        for (var i = 0; i < 5; i++)
            await socket.SendAsync(Control(AuthType, (ulong)i + 1, 4));
        await Task.Delay(300);

        Assert.Equal(1, handler.Started);
        handler.Release();
        await Task.Delay(300);
        Assert.Equal(5, handler.Started);
    }

    private static async Task ReceiveExactlyAsync(Socket socket, byte[] buffer)
    {
        var done = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (done < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(done), SocketFlags.None, timeout.Token);
            if (n == 0)
                throw new IOException("closed");
            done += n;
        }
    }

    /// <summary>Counts the requests it is given and answers none until released.</summary>
    private sealed class BlockingHandler : IControlHandler
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _started;

        public int Started => Volatile.Read(ref _started);

        public void Release() => _released.TrySetResult();

        public async ValueTask<ControlMessage> HandleAsync(ServerSession session, ControlMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _started);
            await _released.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return new ControlMessage(request.Type, new byte[] { 0xC0 });
        }
    }
}
