using System.Net;
using Fabric.Transport.Wire;

namespace Fabric.Transport.Tcp;

/// <summary>
/// A client of <c>tcp://HOST:PORT</c>: one connection carries control frames and read requests, multiplexed by
/// request id; replies come back in any order and payloads land straight in the caller's destination.
/// </summary>
public sealed class TcpFabricClient : IFabricClient
{
    private readonly FramedClient _connection;

    private TcpFabricClient(FramedClient connection) => _connection = connection;

    public FabricEndpoint Endpoint => _connection.Endpoint;

    public bool IsConnected => _connection.IsConnected;

    /// <summary>Connects and exchanges the handshake; an unreachable endpoint throws <see cref="EndpointException"/>.</summary>
    public static async ValueTask<IFabricClient> ConnectAsync(FabricEndpoint endpoint, FabricClientOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (endpoint.Scheme != "tcp")
            throw new EndpointException($"{endpoint} is not a tcp:// endpoint.");
        options ??= FabricClientOptions.Default;
        var address = await EndpointAddresses.ResolveAsync(endpoint, cancellationToken, options.ConnectTimeout).ConfigureAwait(false);
        var connection = await FramedClient.ConnectAsync(new IPEndPoint(address, endpoint.Port), endpoint, options, cancellationToken).ConfigureAwait(false);
        return new TcpFabricClient(connection);
    }

    public ValueTask<ReadStatus> ReadAsync(ReadRequest request, CancellationToken cancellationToken = default) =>
        _connection.ReadAsync(request, cancellationToken);

    public ValueTask ReadBatchAsync(ReadOnlyMemory<ReadRequest> requests, Memory<ReadStatus> statuses, CancellationToken cancellationToken = default) =>
        _connection.ReadBatchAsync(requests, statuses, cancellationToken);

    public Task<ControlMessage> CallAsync(ControlMessage request, CancellationToken cancellationToken = default) =>
        _connection.CallAsync(request, cancellationToken);

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
