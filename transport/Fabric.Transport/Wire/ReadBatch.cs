namespace Fabric.Transport.Wire;

/// <summary>Shared tail of every ReadBatchAsync: waits for each issued read, even after one is cancelled.</summary>
internal static class ReadBatch
{
    /// <summary>Awaits <paramref name="pending"/>[0..count) into <paramref name="statuses"/>; returns the array to the shared pool.</summary>
    public static async ValueTask AwaitAllAsync(ValueTask<ReadStatus>[] pending, int count, Memory<ReadStatus> statuses, CancellationToken cancellationToken)
    {
        var cancelled = false;
        try
        {
            for (var i = 0; i < count; i++)
            {
                try
                {
                    var status = await pending[i].ConfigureAwait(false);
                    statuses.Span[i] = status;
                }
                catch (OperationCanceledException)
                {
                    cancelled = true;
                }
            }
        }
        finally
        {
            Array.Clear(pending, 0, count);
            System.Buffers.ArrayPool<ValueTask<ReadStatus>>.Shared.Return(pending);
        }
        if (cancelled)
            throw new OperationCanceledException(cancellationToken);
    }

    /// <summary>Issues every read through <paramref name="client"/> before waiting for any.</summary>
    public static ValueTask RunAsync(IFabricClient client, ReadOnlyMemory<ReadRequest> requests, Memory<ReadStatus> statuses, CancellationToken cancellationToken)
    {
        if (statuses.Length < requests.Length)
            throw new ArgumentException($"The status list holds {statuses.Length} entries but {requests.Length} reads were asked for.", nameof(statuses));
        var pending = System.Buffers.ArrayPool<ValueTask<ReadStatus>>.Shared.Rent(requests.Length);
        for (var i = 0; i < requests.Length; i++)
        {
            try
            {
                pending[i] = client.ReadAsync(requests.Span[i], cancellationToken);
            }
            catch (OperationCanceledException e)
            {
                pending[i] = ValueTask.FromException<ReadStatus>(e);
            }
        }
        return AwaitAllAsync(pending, requests.Length, statuses, cancellationToken);
    }
}
