using Fabric.Common;
using Fabric.Transport.Rdma;

namespace Fabric.Transport.Tests.Rdma;

/// <summary>
/// The RDMA read queue's success path allocates nothing per read (against <see cref="SoftQueuePair"/>). Counted over
/// the whole process (least of several windows, see <see cref="AllocationMeter"/>), so it runs in the allocation tests'
/// serial collection; any object per read would cost 24+ bytes.
/// </summary>
[Collection(nameof(AllocationTests))]
public sealed class RdmaReadQueueAllocationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Read_SuccessPath_AllocatesNothingPerRead(bool inlineContinuations)
    {
        using var soft = new SoftQueuePair();
        using var remote = new NativeBuffer(1 << 20);
        using var local = new NativeBuffer(64 << 10);
        using var queue = Create(soft, inlineContinuations);

        async Task RunAsync(int rounds)
        {
            for (var round = 0; round < rounds; round++)
            {
                var a = Submit(queue, remote, local, round % 16);
                var b = Submit(queue, remote, local, (round + 1) % 16);
                if (await a != ReadStatus.Ok || await b != ReadStatus.Ok)
                    Assert.Fail("a read failed");
            }
        }

        var perRead = await AllocationMeter.FewestBytesPerOperationAsync(RunAsync, rounds: 4000, operationsPerRound: 2);
        // Inline continuations leave this method on the polling thread, which must not dispose its own queue.
        if (queue.IsPollingThread)
            await Task.Yield();
        Assert.True(perRead < 16, $"rdma read queue: {perRead:0.0} bytes allocated per read");
    }

    private static unsafe RdmaReadQueue Create(SoftQueuePair soft, bool inlineContinuations) =>
        new(soft.Qp, soft.Cq, 64, inlineContinuations, "alloc-poll", SoftQueuePair.MoveToErrorFunction);

    private static unsafe ValueTask<ReadStatus> Submit(RdmaReadQueue queue, NativeBuffer remote, NativeBuffer local, int slot) =>
        queue.Submit((ulong)(local.Pointer + (slot * 4096)), 1, null, (ulong)(remote.Pointer + (slot * 8192)), 2, 4096, TimeSpan.FromSeconds(30), default);
}
