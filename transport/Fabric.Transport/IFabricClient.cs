using Fabric.Common;
using Microsoft.Extensions.Logging;

namespace Fabric.Transport;

/// <summary>
/// The client side of a connection to one endpoint: one-sided reads into caller-owned memory and a control channel.
/// Thread-safe: many reads (at least 64) may be in flight at once and complete in any order.
/// </summary>
public interface IFabricClient : IAsyncDisposable
{
    /// <summary>The endpoint this client is connected to.</summary>
    FabricEndpoint Endpoint { get; }

    /// <summary>False once the peer is gone or the client is disposed; every later read returns <see cref="ReadStatus.PeerGone"/>.</summary>
    bool IsConnected { get; }

    /// <summary>
    /// Reads <c>request.Length</c> bytes of a remote region into <c>request.Destination</c>. Never allocates per
    /// read on the success path. Fails with a status, not an exception, except for cancellation by <paramref name="cancellationToken"/>.
    /// </summary>
    ValueTask<ReadStatus> ReadAsync(ReadRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Issues every read of a scatter list at once and completes when all have ended; <paramref name="statuses"/>[i]
    /// receives the status of <paramref name="requests"/>[i]. <paramref name="statuses"/> must be at least as long.
    /// </summary>
    ValueTask ReadBatchAsync(ReadOnlyMemory<ReadRequest> requests, Memory<ReadStatus> statuses, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends a control request and waits for its reply. An <see cref="ControlTypes.Error"/> reply throws
    /// <see cref="ControlException"/>; a dead peer throws <see cref="PeerGoneException"/>; the operation timeout throws <see cref="TimeoutException"/>.
    /// </summary>
    Task<ControlMessage> CallAsync(ControlMessage request, CancellationToken cancellationToken = default);
}

/// <summary>Options every client honours.</summary>
public sealed record FabricClientOptions
{
    /// <summary>How long connecting may take before the endpoint counts as unreachable.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one read or control call may take before it ends with <see cref="ReadStatus.TimedOut"/>.</summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Where the client logs why its connection ended. Null logs nothing.</summary>
    public ILogger? Logger { get; init; }

    public static FabricClientOptions Default { get; } = new();
}

/// <summary>Typed helpers over <see cref="IFabricClient.CallAsync"/>.</summary>
public static class FabricClientExtensions
{
    /// <summary>Sends <paramref name="request"/> as message <paramref name="type"/> and reads the reply body as <typeparamref name="TResponse"/>.</summary>
    public static async Task<TResponse> CallAsync<TRequest, TResponse>(this IFabricClient client, ushort type, TRequest request, CancellationToken cancellationToken = default)
    {
        var reply = await client.CallAsync(ControlMessage.Create(type, request), cancellationToken).ConfigureAwait(false);
        return reply.Read<TResponse>();
    }

    /// <summary>Reads one region range and throws a <see cref="FabricException"/> naming the status unless it succeeds.</summary>
    public static async ValueTask ReadExactlyAsync(this IFabricClient client, ReadRequest request, CancellationToken cancellationToken = default)
    {
        var status = await client.ReadAsync(request, cancellationToken).ConfigureAwait(false);
        if (status != ReadStatus.Ok)
            throw new FabricException($"Reading {request.Length} bytes at offset {request.Offset} of region {request.RegionId} from {client.Endpoint} failed: {status.Describe()}.");
    }
}
