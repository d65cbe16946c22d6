using System.Diagnostics;
using Fabric.Common;
using Xunit;

namespace Fabric.Transport.Conformance;

/// <summary>
/// The behaviour every transport backend must show, run against real servers. A backend plugs in as one subclass
/// that says how to make a store, start a server on it, kill that server abruptly, and (optionally) open a raw byte
/// stream to it for the malformed-frame tests.
/// </summary>
public abstract class TransportConformanceTests
{
    /// <summary>Control type the suite's handler echoes.</summary>
    protected const ushort EchoType = ControlTypes.FirstUserType;

    protected const uint SmallRegion = 1;
    protected const uint OddRegion = 2;
    protected const ulong SmallKey = 0xA11CE;
    protected const ulong OddKey = 0xB0B;
    protected static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    /// <summary>The regions most tests serve: 1 MiB and an odd-sized one.</summary>
    protected static readonly RegionSpec[] DefaultRegions = [new(SmallRegion, 1 << 20, SmallKey), new(OddRegion, (64 << 10) + 123, OddKey)];

    // ---- hooks a backend implements ----

    /// <summary>Creates the backend's store for <paramref name="regions"/> (memory it owns).</summary>
    protected abstract RegionStore CreateStore(IReadOnlyList<RegionSpec> regions);

    /// <summary>Starts a server exporting <paramref name="store"/> with <paramref name="options"/>.</summary>
    protected abstract Task<IFabricServer> StartServerAsync(RegionStore store, FabricServerOptions options);

    /// <summary>Ends the server at once, as a crashing process would: no reads finish, connections drop.</summary>
    protected abstract Task KillServerAsync(IFabricServer server);

    /// <summary>An endpoint of this scheme where nothing listens.</summary>
    protected abstract FabricEndpoint UnreachableEndpoint { get; }

    /// <summary>Connects a client to <paramref name="server"/>.</summary>
    protected virtual ValueTask<IFabricClient> ConnectAsync(IFabricServer server, FabricClientOptions? options = null) =>
        FabricTransports.ConnectAsync(server.Endpoint, options);

    /// <summary>A raw byte stream to the server's framed channel, for garbage-frame tests; null when the backend has none.</summary>
    protected virtual Task<Stream?> OpenRawStreamAsync(IFabricServer server) => Task.FromResult<Stream?>(null);

    /// <summary>Whether reads travel through the server (tcp, rdma) so it sees and counts them; false for load/store (shm).</summary>
    protected virtual bool ServerSeesReads => true;

    // ---- helpers ----

    protected async Task<ServedRegions> ServeAsync(IReadOnlyList<RegionSpec>? regions = null, FabricServerOptions? options = null)
    {
        var store = CreateStore(regions ?? DefaultRegions);
        try
        {
            foreach (var region in store.Regions)
                RegionPattern.Fill(region);
            var server = await StartServerAsync(store, options ?? new FabricServerOptions { ControlHandler = new EchoHandler() }).ConfigureAwait(false);
            return new ServedRegions(store, server);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    protected static async Task<T> Within<T>(Task<T> task, TimeSpan? limit = null) =>
        await task.WaitAsync(limit ?? Prompt).ConfigureAwait(false);

    // ---- reads ----

    [ConformanceFact]
    public async Task Read_RandomOffsetsAndSizes_MatchByteForByte()
    {
        const uint Big = 7;
        const ulong BigKey = 77;
        const int Max = 64 << 20;
        await using var served = await ServeAsync([new(Big, Max + (1 << 20), BigKey), .. DefaultRegions]);
        await using var client = await ConnectAsync(served.Server);
        using var destination = new NativeBuffer(Max);
        var random = new Random(20260601);
        int[] sizes = [1, 2, 7, 63, 4095, 4096, 4097, 65_539, 1 << 20, (3 << 20) + 5, 16 << 20, Max];
        foreach (var size in sizes)
        {
            var offset = random.NextInt64(0, Max + (1 << 20) - size + 1);
            var memory = destination.Memory[..size];
            memory.Span.Fill(0xEE);
            var status = await Within(client.ReadAsync(new ReadRequest(Big, BigKey, offset, memory)).AsTask(), TimeSpan.FromSeconds(20));
            Assert.Equal(ReadStatus.Ok, status);
            Assert.True(RegionPattern.Matches(Big, offset, memory.Span), $"{size} bytes at {offset} differ from the region.");
        }
        // The last byte of a region and a whole odd-sized region.
        var whole = destination.Memory[..((64 << 10) + 123)];
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(OddRegion, OddKey, 0, whole)));
        Assert.True(RegionPattern.Matches(OddRegion, 0, whole.Span));
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(OddRegion, OddKey, whole.Length - 1, destination.Memory[..1])));
        Assert.True(RegionPattern.Matches(OddRegion, whole.Length - 1, destination.Span[..1]));
    }

    [ConformanceFact]
    public async Task Read_PastRegionEnd_FailsWithOutOfRange()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        var buffer = new byte[4096];
        Assert.Equal(ReadStatus.OutOfRange, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, (1 << 20) - 100, buffer)));
        Assert.Equal(ReadStatus.OutOfRange, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 1 << 20, buffer.AsMemory(0, 1))));
        Assert.Equal(ReadStatus.OutOfRange, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, -1, buffer.AsMemory(0, 1))));
        Assert.Equal(ReadStatus.OutOfRange, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, long.MaxValue - 10, buffer)));
        // The connection is still good afterwards.
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, (1 << 20) - 4096, buffer)));
        Assert.True(RegionPattern.Matches(SmallRegion, (1 << 20) - 4096, buffer));
    }

    [ConformanceFact]
    public async Task Read_UnknownRegion_FailsWithUnknownRegion()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        Assert.Equal(ReadStatus.UnknownRegion, await client.ReadAsync(new ReadRequest(999, SmallKey, 0, new byte[16])));
    }

    [ConformanceFact]
    public async Task Read_WrongKey_FailsWithAccessDenied()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        var buffer = new byte[64];
        Assert.Equal(ReadStatus.AccessDenied, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey + 1, 0, buffer)));
        Assert.Equal(ReadStatus.AccessDenied, await client.ReadAsync(new ReadRequest(SmallRegion, OddKey, 0, buffer)));
        Assert.All(buffer, b => Assert.Equal(0, b));
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 0, buffer)));
    }

    [ConformanceFact]
    public async Task Read_AuthorizeRefusesSession_FailsWithAccessDenied()
    {
        var served = await ServeAsync(options: new FabricServerOptions { Authorize = (_, region) => region.Id != SmallRegion });
        await using (served)
        {
            await using var client = await ConnectAsync(served.Server);
            var buffer = new byte[64];
            Assert.Equal(ReadStatus.AccessDenied, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 0, buffer)));
            Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(OddRegion, OddKey, 0, buffer)));
        }
    }

    [ConformanceFact]
    public async Task Read_ThousandConcurrent_AllCorrect()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        const int Count = 1000;
        const int Size = 1024;
        using var destination = new NativeBuffer(Count * Size);
        var random = new Random(7);
        var offsets = Enumerable.Range(0, Count).Select(_ => random.NextInt64(0, (1 << 20) - Size)).ToArray();
        var reads = new Task<ReadStatus>[Count];
        for (var i = 0; i < Count; i++)
            reads[i] = client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, offsets[i], destination.Memory.Slice(i * Size, Size))).AsTask();
        var statuses = await Within(Task.WhenAll(reads), TimeSpan.FromSeconds(20));
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal(ReadStatus.Ok, statuses[i]);
            Assert.True(RegionPattern.Matches(SmallRegion, offsets[i], destination.Span.Slice(i * Size, Size)), $"read {i} differs");
        }
    }

    [ConformanceFact]
    public async Task ReadBatch_ScatterList_FillsEveryDestinationWithItsOwnStatus()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        const int Count = 200;
        using var destination = new NativeBuffer(Count * 4096);
        var requests = new ReadRequest[Count];
        for (var i = 0; i < Count; i++)
        {
            var size = 1 + (i * 37 % 4096);
            requests[i] = i % 50 == 49
                ? new ReadRequest(SmallRegion, SmallKey + 1, 0, destination.Memory.Slice(i * 4096, size))
                : new ReadRequest(i % 2 == 0 ? SmallRegion : OddRegion, i % 2 == 0 ? SmallKey : OddKey, i * 211, destination.Memory.Slice(i * 4096, size));
        }
        var statuses = new ReadStatus[Count];
        await client.ReadBatchAsync(requests, statuses).AsTask().WaitAsync(Prompt);
        for (var i = 0; i < Count; i++)
        {
            if (i % 50 == 49)
            {
                Assert.Equal(ReadStatus.AccessDenied, statuses[i]);
                continue;
            }
            Assert.Equal(ReadStatus.Ok, statuses[i]);
            Assert.True(RegionPattern.Matches(requests[i].RegionId, requests[i].Offset, requests[i].Destination.Span), $"batch entry {i} differs");
        }
    }

    [ConformanceFact]
    public async Task ReadBatch_StatusListTooShort_Throws()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        var requests = new[] { new ReadRequest(SmallRegion, SmallKey, 0, new byte[8]), new ReadRequest(SmallRegion, SmallKey, 0, new byte[8]) };
        await Assert.ThrowsAsync<ArgumentException>(async () => await client.ReadBatchAsync(requests, new ReadStatus[1]));
    }

    // ---- failures of peers ----

    [ConformanceFact]
    public async Task Server_KilledMidTransfer_FailsPendingReadsPromptly()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        const int Count = 256;
        const int Size = 256 << 10;
        using var destination = new NativeBuffer(Count * (long)Size);
        var reads = new Task<ReadStatus>[Count];
        for (var i = 0; i < Count; i++)
            reads[i] = client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, i * 1024, destination.Memory.Slice(i * Size, Size))).AsTask();
        await Task.WhenAny(reads);
        var clock = Stopwatch.StartNew();
        await KillServerAsync(served.Server);
        var statuses = await Within(Task.WhenAll(reads));
        Assert.True(clock.Elapsed < Prompt, $"pending reads took {clock.Elapsed} to fail");
        for (var i = 0; i < Count; i++)
        {
            Assert.True(statuses[i] is ReadStatus.Ok or ReadStatus.PeerGone, $"read {i} ended with {statuses[i]}");
            if (statuses[i] == ReadStatus.Ok)
                Assert.True(RegionPattern.Matches(SmallRegion, i * 1024, destination.Span.Slice(i * Size, Size)), $"read {i} differs");
        }
        await WaitUntil(() => !client.IsConnected);
        Assert.Equal(ReadStatus.PeerGone, await Within(client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 0, new byte[16])).AsTask()));
        await Assert.ThrowsAsync<PeerGoneException>(() => client.CallAsync(ControlMessage.Create(EchoType, "x")).WaitAsync(Prompt));
    }

    [ConformanceFact]
    public async Task Client_DisconnectingMidTransfer_LeavesServerHealthyForTheNext()
    {
        var closed = new TaskCompletionSource<ServerSession>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var served = await ServeAsync(options: new FabricServerOptions
        {
            ControlHandler = new EchoHandler(),
            SessionClosed = session => closed.TrySetResult(session),
        });
        var first = await ConnectAsync(served.Server);
        using (var destination = new NativeBuffer(64 * (64 << 10)))
        {
            var reads = Enumerable.Range(0, 64)
                .Select(i => first.ReadAsync(new ReadRequest(SmallRegion, SmallKey, i, destination.Memory.Slice(i * (64 << 10), 64 << 10))).AsTask())
                .ToArray();
            await first.DisposeAsync();
            var statuses = await Within(Task.WhenAll(reads));
            Assert.All(statuses, s => Assert.True(s is ReadStatus.Ok or ReadStatus.PeerGone, $"a read ended with {s}"));
        }
        await Within(closed.Task);

        await using var second = await ConnectAsync(served.Server);
        var buffer = new byte[100_000];
        Assert.Equal(ReadStatus.Ok, await Within(second.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 5, buffer)).AsTask()));
        Assert.True(RegionPattern.Matches(SmallRegion, 5, buffer));
        await WaitUntil(() => served.Server.SessionCount == 1);
    }

    [ConformanceFact]
    public async Task Connect_NothingListening_FailsWithEndpointException()
    {
        var error = await Assert.ThrowsAsync<EndpointException>(async () => await FabricTransports.ConnectAsync(UnreachableEndpoint));
        Assert.Contains(UnreachableEndpoint.ToString(), error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [ConformanceFact]
    public async Task Server_Stopped_FinishesOrFailsInFlightReadsAndRefusesNewOnes()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        using var destination = new NativeBuffer(64 * (128 << 10));
        var reads = Enumerable.Range(0, 64)
            .Select(i => client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, i * 7, destination.Memory.Slice(i * (128 << 10), 128 << 10))).AsTask())
            .ToArray();
        await served.Server.StopAsync().WaitAsync(Prompt);
        var statuses = await Within(Task.WhenAll(reads));
        for (var i = 0; i < statuses.Length; i++)
        {
            Assert.True(statuses[i] is ReadStatus.Ok or ReadStatus.PeerGone, $"read {i} ended with {statuses[i]}");
            if (statuses[i] == ReadStatus.Ok)
                Assert.True(RegionPattern.Matches(SmallRegion, i * 7, destination.Span.Slice(i * (128 << 10), 128 << 10)));
        }
        await WaitUntil(() => !client.IsConnected);
        Assert.Equal(ReadStatus.PeerGone, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 0, new byte[8])));
    }

    // ---- control channel ----

    [ConformanceFact]
    public async Task Control_RoundTrip_ReturnsTheHandlersReply()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        var reply = await client.CallAsync<string, string>(EchoType, "hello").WaitAsync(Prompt);
        Assert.Equal("echo: hello", reply);
        var big = new string('x', 6 << 20);
        Assert.Equal("echo: " + big, await client.CallAsync<string, string>(EchoType, big).WaitAsync(Prompt));
        var many = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => client.CallAsync<string, string>(EchoType, $"m{i}"))).WaitAsync(Prompt);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"echo: m{i}"), many);
    }

    [ConformanceFact]
    public async Task Control_UnknownType_ThrowsControlException()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        var error = await Assert.ThrowsAsync<ControlException>(() => client.CallAsync(ControlMessage.Create<string>(EchoType + 1, "?")).WaitAsync(Prompt));
        Assert.Equal(ControlErrorCode.UnknownMessageType, error.Code);
        error = await Assert.ThrowsAsync<ControlException>(() => client.CallAsync(ControlMessage.Create<string>(50, "?")).WaitAsync(Prompt));
        Assert.Equal(ControlErrorCode.UnknownMessageType, error.Code);
        Assert.Equal("echo: still here", await client.CallAsync<string, string>(EchoType, "still here").WaitAsync(Prompt));
    }

    [ConformanceFact]
    public async Task Control_NoHandler_RefusesUserTypes()
    {
        await using var served = await ServeAsync(options: FabricServerOptions.Default);
        await using var client = await ConnectAsync(served.Server);
        var error = await Assert.ThrowsAsync<ControlException>(() => client.CallAsync(ControlMessage.Create(EchoType, "?")).WaitAsync(Prompt));
        Assert.Equal(ControlErrorCode.UnknownMessageType, error.Code);
    }

    [ConformanceFact]
    public async Task Control_HandlerThrows_SendsErrorAndKeepsSession()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        var error = await Assert.ThrowsAsync<ControlException>(() => client.CallAsync(ControlMessage.Create(EchoHandler.FailType, "boom")).WaitAsync(Prompt));
        Assert.Equal(ControlErrorCode.Internal, error.Code);
        Assert.Contains("boom", error.Message, StringComparison.Ordinal);
        Assert.Equal("echo: ok", await client.CallAsync<string, string>(EchoType, "ok").WaitAsync(Prompt));
    }

    [ConformanceFact]
    public async Task Server_GarbageAndOversizedFrames_CloseOnlyThatSession()
    {
        await using var served = await ServeAsync();
        await using var good = await ConnectAsync(served.Server);
        byte[][] attacks =
        [
            [.. Enumerable.Repeat((byte)0xFF, 64)],                                  // nonsense
            [0xFF, 0xFF, 0xFF, 0x7F, 5, 0, 100, 0, 1, 0, 0, 0, 0, 0, 0, 0],             // a 2 GiB control frame
            [16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, .. new byte[16]],       // hello with a wrong magic
            [4, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],             // a read before the handshake
        ];
        var tried = 0;
        foreach (var attack in attacks)
        {
            await using var raw = await OpenRawStreamAsync(served.Server);
            if (raw is null)
                return;
            tried++;
            await raw.WriteAsync(attack);
            await raw.FlushAsync();
            // The server hangs up on the client's session: reading ends (EOF or reset) instead of hanging.
            var sink = new byte[256];
            try
            {
                while (await raw.ReadAsync(sink).AsTask().WaitAsync(Prompt) > 0)
                {
                }
            }
            catch (IOException)
            {
            }
        }
        Assert.Equal(attacks.Length, tried);
        var buffer = new byte[4096];
        Assert.Equal(ReadStatus.Ok, await Within(good.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 123, buffer)).AsTask()));
        Assert.True(RegionPattern.Matches(SmallRegion, 123, buffer));
        Assert.Equal("echo: alive", await good.CallAsync<string, string>(EchoType, "alive").WaitAsync(Prompt));
        await using var next = await ConnectAsync(served.Server);
        Assert.Equal(ReadStatus.Ok, await Within(next.ReadAsync(new ReadRequest(OddRegion, OddKey, 0, buffer)).AsTask()));
    }

    // ---- cancellation and time-outs ----

    [ConformanceFact]
    public async Task Read_CancelledToken_ThrowsAndReclaimsTheSlot()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 0, new byte[64]), cancelled.Token));

        // Many reads cancelled in flight: each ends Ok or cancelled, and none of their slots leaks.
        using var destination = new NativeBuffer(256 << 10);
        for (var round = 0; round < 20; round++)
        {
            using var cancel = new CancellationTokenSource();
            var reads = Enumerable.Range(0, 100)
                .Select(i => client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 0, destination.Memory.Slice(i * 2048, 2048)), cancel.Token).AsTask())
                .ToArray();
            await cancel.CancelAsync();
            foreach (var read in reads)
            {
                try
                {
                    Assert.Equal(ReadStatus.Ok, await Within(read));
                }
                catch (OperationCanceledException)
                {
                }
            }
        }
        var buffer = new byte[4096];
        Assert.Equal(ReadStatus.Ok, await Within(client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 9, buffer)).AsTask()));
        Assert.True(RegionPattern.Matches(SmallRegion, 9, buffer));
    }

    [ConformanceFact]
    public async Task Read_ServerStalls_EndsWithTimedOut()
    {
        using var stall = new ManualResetEventSlim(false);
        await using var served = await ServeAsync(options: new FabricServerOptions
        {
            ControlHandler = new EchoHandler(),
            Authorize = (_, region) => region.Id != OddRegion || stall.Wait(TimeSpan.FromSeconds(10)),
        });
        await using var client = await ConnectAsync(served.Server, new FabricClientOptions { OperationTimeout = TimeSpan.FromMilliseconds(300) });
        var clock = Stopwatch.StartNew();
        var status = await Within(client.ReadAsync(new ReadRequest(OddRegion, OddKey, 0, new byte[64])).AsTask());
        Assert.Equal(ReadStatus.TimedOut, status);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(4));
        stall.Set();
        // The late reply (if any) is dropped; the connection keeps working.
        var buffer = new byte[512];
        Assert.Equal(ReadStatus.Ok, await Within(client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 1, buffer)).AsTask()));
        Assert.True(RegionPattern.Matches(SmallRegion, 1, buffer));
    }

    [ConformanceFact]
    public async Task Control_HandlerStalls_ThrowsTimeoutException()
    {
        await using var served = await ServeAsync();
        await using var client = await ConnectAsync(served.Server, new FabricClientOptions { OperationTimeout = TimeSpan.FromMilliseconds(300) });
        await Assert.ThrowsAsync<TimeoutException>(() => client.CallAsync(ControlMessage.Create(EchoHandler.StallType, "zzz")).WaitAsync(Prompt));
        Assert.Equal("echo: awake", await client.CallAsync<string, string>(EchoType, "awake").WaitAsync(Prompt));
    }

    // ---- accounting ----

    [ConformanceFact]
    public async Task Server_ReportsServedReadsAndClosedSessions()
    {
        var served = 0L;
        var refused = 0;
        var closed = new TaskCompletionSource<ServerSession>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var regions = await ServeAsync(options: new FabricServerOptions
        {
            ReadServed = (_, status, bytes) =>
            {
                if (status == ReadStatus.Ok)
                    Interlocked.Add(ref served, bytes);
                else
                    Interlocked.Increment(ref refused);
            },
            SessionClosed = session => closed.TrySetResult(session),
        });
        var client = await ConnectAsync(regions.Server);
        await WaitUntil(() => regions.Server.SessionCount == 1);
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(SmallRegion, SmallKey, 0, new byte[1000])));
        Assert.Equal(ReadStatus.AccessDenied, await client.ReadAsync(new ReadRequest(OddRegion, 1, 0, new byte[10])));
        await client.DisposeAsync();
        var session = await Within(closed.Task);
        await WaitUntil(() => regions.Server.SessionCount == 0);
        if (ServerSeesReads)
        {
            Assert.Equal(1000, Interlocked.Read(ref served));
            Assert.Equal(1000, session.BytesRead);
            Assert.Equal(1, session.Reads);
            Assert.Equal(1, session.RefusedReads);
        }
    }

    protected static async Task WaitUntil(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > Prompt)
                Assert.Fail("The condition did not hold within the time limit.");
            await Task.Delay(10);
        }
    }

    /// <summary>The suite's control handler: echoes strings, fails or stalls on request.</summary>
    protected sealed class EchoHandler : IControlHandler
    {
        public const ushort FailType = EchoType + 10;
        public const ushort StallType = EchoType + 11;

        public async ValueTask<ControlMessage> HandleAsync(ServerSession session, ControlMessage request, CancellationToken cancellationToken)
        {
            switch (request.Type)
            {
                case EchoType:
                    return ControlMessage.Create(EchoType, "echo: " + request.Read<string>());
                case FailType:
                    throw new InvalidOperationException(request.Read<string>());
                case StallType:
                    await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
                    return ControlMessage.Create(StallType, "late");
                default:
                    throw new ControlException(ControlErrorCode.UnknownMessageType, $"No handler for control type {request.Type}.");
            }
        }
    }
}
