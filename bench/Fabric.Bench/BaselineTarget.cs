using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Fabric.Common;

namespace Fabric.Bench;

/// <summary>
/// What a transport is measured against in the same run: for shm a single-thread memcpy of the same size between
/// native buffers; for tcp a raw loopback socket where the client asks for N bytes and a server thread writes them.
/// </summary>
internal sealed class BaselineTarget : IAsyncDisposable
{
    private readonly NativeBuffer _source;
    private readonly NativeBuffer _destination;
    private readonly Socket? _client;
    private readonly Socket? _listener;
    private readonly Thread? _server;
    private readonly byte[] _request = GC.AllocateArray<byte>(4, pinned: true);
    private long _nextOffset;

    private BaselineTarget(NativeBuffer source, NativeBuffer destination, Socket? client, Socket? listener, Thread? server)
    {
        _source = source;
        _destination = destination;
        _client = client;
        _listener = listener;
        _server = server;
    }

    public static async Task<BaselineTarget> StartAsync(string transport, int largest, CancellationToken cancellationToken)
    {
        var source = new NativeBuffer(largest * 2L);
        source.Span.Fill(0x5A);
        var destination = new NativeBuffer(largest);
        if (transport == "shm")
            return new BaselineTarget(source, destination, null, null, null);

        var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
        Tune(client);
        var accept = listener.AcceptAsync(cancellationToken);
        await client.ConnectAsync(listener.LocalEndPoint!, cancellationToken);
        var peer = await accept;
        Tune(peer);
        var server = new Thread(() => Serve(peer, source)) { IsBackground = true, Name = "raw-socket baseline" };
        server.Start();
        return new BaselineTarget(source, destination, client, listener, server);
    }

    private static void Tune(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = 4 * 1024 * 1024;
        socket.ReceiveBufferSize = 4 * 1024 * 1024;
    }

    /// <summary>The raw server: reads a 4-byte size, writes that many bytes from memory, until the client hangs up.</summary>
    private static void Serve(Socket socket, NativeBuffer source)
    {
        Span<byte> request = stackalloc byte[4];
        long offset = 0;
        try
        {
            while (true)
            {
                var got = 0;
                while (got < 4)
                {
                    var n = socket.Receive(request[got..]);
                    if (n == 0)
                        return;
                    got += n;
                }
                var size = BinaryPrimitives.ReadInt32LittleEndian(request);
                offset = offset + size <= source.Length ? offset : 0;
                var payload = source.Span.Slice((int)offset, size);
                offset += size;
                while (!payload.IsEmpty)
                    payload = payload[socket.Send(payload)..];
            }
        }
        catch (SocketException)
        {
        }
        finally
        {
            socket.Dispose();
        }
    }

    /// <summary>Moves <paramref name="size"/> bytes the baseline way.</summary>
    public async ValueTask MoveOnceAsync(int size, CancellationToken cancellationToken)
    {
        if (_client is null)
        {
            var offset = _nextOffset + size <= _source.Length ? _nextOffset : 0;
            _nextOffset = offset + size;
            Copy(_source, offset, _destination, size);
            return;
        }
        BinaryPrimitives.WriteInt32LittleEndian(_request, size);
        await _client.SendAsync(_request, SocketFlags.None, cancellationToken);
        var done = 0;
        while (done < size)
        {
            var n = await _client.ReceiveAsync(_destination.Memory[done..size], SocketFlags.None, cancellationToken);
            if (n == 0)
                throw new IOException("The raw baseline server hung up.");
            done += n;
        }
    }

    private static unsafe void Copy(NativeBuffer source, long offset, NativeBuffer destination, int size) =>
        Buffer.MemoryCopy(source.Pointer + offset, destination.Pointer, size, size);

    public ValueTask DisposeAsync()
    {
        _client?.Dispose();
        _listener?.Dispose();
        _server?.Join(TimeSpan.FromSeconds(2));
        _source.Dispose();
        _destination.Dispose();
        return ValueTask.CompletedTask;
    }
}
