using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Fabric.Transport.Host;
using Fabric.Transport.Tcp;
using Fabric.Transport.Wire;

namespace Fabric.Transport.Tests;

/// <summary>The tcp client and server against peers that break the protocol, written byte by byte.</summary>
public sealed class TcpProtocolTests
{
    private static (Socket Listener, FabricEndpoint Endpoint) Listen()
    {
        var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        return (listener, FabricEndpoint.Parse($"tcp://127.0.0.1:{((IPEndPoint)listener.LocalEndPoint!).Port}"));
    }

    [Fact]
    public async Task Connect_PeerSpeaksAnotherProtocol_FailsWithEndpointException()
    {
        var (listener, endpoint) = Listen();
        using (listener)
        {
            var serve = Task.Run(async () =>
            {
                using var peer = await listener.AcceptAsync();
                await peer.SendAsync("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
                await Task.Delay(500);
            });
            var error = await Assert.ThrowsAsync<EndpointException>(async () => await FabricTransports.ConnectAsync(endpoint));
            Assert.Contains(endpoint.ToString(), error.Message, StringComparison.Ordinal);
            Assert.Contains("does not speak the Fabric protocol", error.Message, StringComparison.Ordinal);
            await serve;
        }
    }

    [Fact]
    public async Task Connect_PeerNeverAnswers_FailsWithinTheConnectTimeout()
    {
        var (listener, endpoint) = Listen();
        using (listener)
        {
            var clock = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<EndpointException>(async () =>
                await FabricTransports.ConnectAsync(endpoint, new FabricClientOptions { ConnectTimeout = TimeSpan.FromMilliseconds(300) }));
            Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
            Assert.Contains("handshake", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Read_ReplyOfTheWrongLength_EndsWithPeerGoneAndDisconnects()
    {
        var (listener, endpoint) = Listen();
        using (listener)
        {
            var serve = Task.Run(async () =>
            {
                using var peer = await listener.AcceptAsync();
                var request = new byte[FrameHeader.Size + HelloFrame.Size];
                await ReceiveExactly(peer, request);
                var reply = new byte[FrameHeader.Size + HelloFrame.Size];
                new FrameHeader(HelloFrame.Size, FrameKind.HelloReply, 0, 0, 0).Write(reply);
                new HelloFrame(HelloFrame.FabricMagic, HelloFrame.CurrentVersion, HelloFrame.StatusOk, 0).Write(reply.AsSpan(FrameHeader.Size));
                await peer.SendAsync(reply);

                var read = new byte[FrameHeader.Size + ReadFrame.Size];
                await ReceiveExactly(peer, read);
                var id = FrameHeader.Parse(read).RequestId;
                var wrong = new byte[FrameHeader.Size + 10];
                new FrameHeader(10, FrameKind.ReadReply, 0, 0, id).Write(wrong);
                await peer.SendAsync(wrong);
                await Task.Delay(2000);
            });
            await using var client = await FabricTransports.ConnectAsync(endpoint);
            var status = await client.ReadAsync(new ReadRequest(1, 1, 0, new byte[64])).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(ReadStatus.PeerGone, status);
            Assert.False(client.IsConnected);
        }
    }

    [Fact]
    public async Task Listen_OnAPortInUse_IsRefusedWithOneSentence()
    {
        using var store = new HostRegionStore([new RegionSpec(1, 4096, 1)]);
        await using var first = await FabricServers.StartAsync(FabricEndpoint.Parse("tcp://127.0.0.1:0"), store);
        var taken = first.Endpoint;

        var refused = await Assert.ThrowsAsync<EndpointException>(() => FabricServers.StartAsync(taken, store));
        Assert.Equal($"{taken} is already in use by another process.", refused.Message);

        // Every connection still reaches the first server.
        for (var i = 0; i < 8; i++)
        {
            await using var client = await FabricTransports.ConnectAsync(taken);
            Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(1, store.Find(1)!.Key, 0, new byte[16])));
        }
    }

    [Fact]
    public async Task Server_HelloWithAnotherVersion_IsRefusedAndClosed()
    {
        using var store = new HostRegionStore([new RegionSpec(1, 4096, 1)]);
        await using var server = await TcpFabricServer.StartAsync(FabricEndpoint.Parse("tcp://127.0.0.1:0"), store);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, server.Endpoint.Port);
        var hello = new byte[FrameHeader.Size + HelloFrame.Size];
        new FrameHeader(HelloFrame.Size, FrameKind.Hello, 0, 0, 0).Write(hello);
        new HelloFrame(HelloFrame.FabricMagic, 99, 0, 0).Write(hello.AsSpan(FrameHeader.Size));
        await socket.SendAsync(hello);
        var reply = new byte[FrameHeader.Size + HelloFrame.Size];
        await ReceiveExactly(socket, reply);
        Assert.Equal(FrameKind.HelloReply, FrameHeader.Parse(reply).Kind);
        Assert.Equal(HelloFrame.StatusVersionRefused, HelloFrame.Parse(reply.AsSpan(FrameHeader.Size)).Status);
        Assert.Equal(0, await socket.ReceiveAsync(new byte[16]).WaitAsync(TimeSpan.FromSeconds(5)));
    }

    private static async Task ReceiveExactly(Socket socket, byte[] buffer)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(done));
            if (n == 0)
                throw new IOException("closed");
            done += n;
        }
    }
}
