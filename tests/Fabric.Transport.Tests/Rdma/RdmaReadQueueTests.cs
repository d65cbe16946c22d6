using System.Diagnostics;
using Fabric.Common;
using Fabric.Transport.Rdma;

namespace Fabric.Transport.Tests.Rdma;

/// <summary>The RDMA READ queue's logic, run against <see cref="SoftQueuePair"/> (no device can run here).</summary>
public sealed class RdmaReadQueueTests : IDisposable
{
    private const int RemoteBytes = 8 << 20;
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private readonly SoftQueuePair _soft = new();
    private readonly NativeBuffer _remote = new(RemoteBytes);
    private readonly NativeBuffer _local = new(RemoteBytes);

    public RdmaReadQueueTests()
    {
        var remote = _remote.Span;
        for (var i = 0; i < RemoteBytes; i++)
            remote[i] = (byte)(i * 31 + (i >> 12));
    }

    private unsafe RdmaReadQueue CreateQueue(int depth) =>
        new(_soft.Qp, _soft.Cq, depth, inlineContinuations: false, "test-poll", SoftQueuePair.MoveToErrorFunction);

    private unsafe ValueTask<ReadStatus> Read(RdmaReadQueue queue, long remoteOffset, long localOffset, int length, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        queue.Submit((ulong)(_local.Pointer + localOffset), 7, null, (ulong)(_remote.Pointer + remoteOffset), 9, length, timeout ?? Generous, cancellationToken);

    private bool Matches(long remoteOffset, long localOffset, int length) =>
        _local.Span.Slice((int)localOffset, length).SequenceEqual(_remote.Span.Slice((int)remoteOffset, length));

    [Fact]
    public async Task Reads_OfManySizes_ArriveWhole_AndLargeOnesAreSliced()
    {
        using var queue = CreateQueue(16);
        int[] sizes = [1, 4095, 4096, RdmaReadQueue.SliceBytes, RdmaReadQueue.SliceBytes + 1, (5 * RdmaReadQueue.SliceBytes) + 3];
        foreach (var size in sizes)
        {
            _soft.Lengths.Clear();
            Assert.Equal(ReadStatus.Ok, await Read(queue, 777, 5, size).AsTask().WaitAsync(Generous));
            Assert.True(Matches(777, 5, size), $"{size} bytes differ");
            Assert.Equal((size + RdmaReadQueue.SliceBytes - 1) / RdmaReadQueue.SliceBytes, _soft.Lengths.Count);
            Assert.All(_soft.Lengths, l => Assert.InRange(l, 1u, (uint)RdmaReadQueue.SliceBytes));
            Assert.Equal(size, _soft.Lengths.Sum(l => (long)l));
        }
        Assert.Empty(_soft.Problems);
    }

    [Fact]
    public async Task ManyConcurrentReads_AllCorrect_AndNeverMoreInFlightThanTheQueueHolds()
    {
        using var queue = CreateQueue(8);
        const int Count = 500;
        const int Size = 4096 + 17;
        var random = new Random(3);
        var offsets = Enumerable.Range(0, Count).Select(_ => (long)random.Next(0, RemoteBytes - Size)).ToArray();
        var reads = new Task<ReadStatus>[Count];
        for (var i = 0; i < Count; i++)
            reads[i] = Read(queue, offsets[i], (long)i * Size, Size).AsTask();
        var statuses = await Task.WhenAll(reads).WaitAsync(Generous);
        Assert.All(statuses, s => Assert.Equal(ReadStatus.Ok, s));
        for (var i = 0; i < Count; i++)
            Assert.True(Matches(offsets[i], (long)i * Size, Size), $"read {i} differs");
        Assert.InRange(_soft.MaxOutstanding, 1, 8);
        Assert.True(queue.IsHealthy);
    }

    [Fact]
    public async Task ErrorCompletion_FailsPendingReadsAndNamesTheVerbsStatus()
    {
        using var queue = CreateQueue(64);
        _soft.FailAt = 3;
        var reads = Enumerable.Range(0, 10).Select(i => Read(queue, 0, (long)i * (2 << 20) % (RemoteBytes - (2 << 20)), 2 << 20).AsTask()).ToArray();
        var statuses = await Task.WhenAll(reads).WaitAsync(Generous);
        Assert.Equal(ReadStatus.Ok, statuses[0]);
        Assert.Equal(ReadStatus.PeerGone, statuses[1]);
        Assert.All(statuses[2..], s => Assert.Equal(ReadStatus.PeerGone, s));
        Assert.False(queue.IsHealthy);
        Assert.Contains("IBV_WC_RETRY_EXC_ERR (transport retry counter exceeded)", queue.FailureReason, StringComparison.Ordinal);
        Assert.Equal(ReadStatus.PeerGone, await Read(queue, 0, 0, 64));
    }

    [Fact]
    public async Task RemoteAccessError_EndsThatReadWithAccessDenied()
    {
        using var queue = CreateQueue(64);
        _soft.FailAt = 1;
        _soft.FailStatus = Fabric.Transport.Rdma.Native.IbvWcStatus.RemAccessErr;
        Assert.Equal(ReadStatus.AccessDenied, await Read(queue, 0, 0, 128).AsTask().WaitAsync(Generous));
        Assert.Contains("IBV_WC_REM_ACCESS_ERR", queue.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StalledRead_TimesOut_AndMovesTheQueuePairToError()
    {
        using var queue = CreateQueue(64);
        _soft.Hold = true;
        var clock = Stopwatch.StartNew();
        var status = await Read(queue, 0, 0, 4096, TimeSpan.FromMilliseconds(200)).AsTask().WaitAsync(Generous);
        Assert.Equal(ReadStatus.TimedOut, status);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(190), TimeSpan.FromSeconds(10));
        Assert.True(_soft.InError);
        Assert.False(queue.IsHealthy);
    }

    [Fact]
    public async Task Cancellation_WaitsForPostedWork_ThenThrows_AndTheSlotIsReused()
    {
        using var queue = CreateQueue(64);
        _soft.Hold = true;
        using var cancel = new CancellationTokenSource();
        var read = Read(queue, 0, 0, 4096, cancellationToken: cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Task.Delay(100);
        Assert.False(read.IsCompleted, "a cancelled read must not end while the adapter may still write its destination");
        _soft.Release();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.WaitAsync(Generous));
        _soft.Hold = false;
        for (var i = 0; i < 100; i++)
            Assert.Equal(ReadStatus.Ok, await Read(queue, i, 0, 64).AsTask().WaitAsync(Generous));
        Assert.True(queue.IsHealthy);
    }

    [Fact]
    public async Task AlreadyCancelledToken_EndsWithoutPosting()
    {
        using var queue = CreateQueue(64);
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Read(queue, 0, 0, 64, cancellationToken: cancel.Token).AsTask().WaitAsync(Generous));
        Assert.Empty(_soft.Lengths);
    }

    [Fact]
    public async Task PostFailure_FailsTheReadAndNamesTheErrno()
    {
        using var queue = CreateQueue(64);
        _soft.PostError = 12;
        _soft.PostErrorAt = 1;
        var status = await Read(queue, 0, 0, (3 * RdmaReadQueue.SliceBytes) - 5).AsTask().WaitAsync(Generous);
        Assert.Equal(ReadStatus.Failed, status);
        Assert.Contains("ibv_post_send failed with ENOMEM", queue.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dispose_EndsHeldReadsWithPeerGone()
    {
        var queue = CreateQueue(64);
        _soft.Hold = true;
        var reads = Enumerable.Range(0, 5).Select(i => Read(queue, i, i * 64, 64).AsTask()).ToArray();
        queue.Dispose();
        var statuses = await Task.WhenAll(reads).WaitAsync(Generous);
        Assert.All(statuses, s => Assert.Equal(ReadStatus.PeerGone, s));
    }

    public void Dispose()
    {
        _soft.Dispose();
        _remote.Dispose();
        _local.Dispose();
    }
}
