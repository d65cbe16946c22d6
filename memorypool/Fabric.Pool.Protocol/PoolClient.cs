using System.IO.Hashing;
using Fabric.Transport;

namespace Fabric.Pool.Protocol;

/// <summary>
/// A connection to a pool: the transport client, the tenant it authenticated as, and the catalog. Owns the
/// transport client and disposes it.
/// </summary>
public sealed class PoolClient : IAsyncDisposable
{
    private PoolClient(IFabricClient transport, string tenant, CatalogReply catalog)
    {
        Transport = transport;
        Tenant = tenant;
        Catalog = catalog;
    }

    /// <summary>The underlying transport client (reads, control calls).</summary>
    public IFabricClient Transport { get; }

    /// <summary>The tenant name the pool gave this client.</summary>
    public string Tenant { get; }

    public CatalogReply Catalog { get; }

    /// <summary>
    /// Connects to <paramref name="endpoint"/>, authenticates with <paramref name="token"/> and fetches the catalog.
    /// A wrong token throws <see cref="ControlException"/> (Unauthorized); an unreachable endpoint <see cref="EndpointException"/>.
    /// </summary>
    public static async Task<PoolClient> ConnectAsync(string endpoint, string? token, FabricClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        var transport = await FabricTransports.ConnectAsync(endpoint, options, cancellationToken).ConfigureAwait(false);
        try
        {
            var auth = await transport.CallAsync<AuthenticateRequest, AuthenticateReply>(PoolMessageTypes.Authenticate, new AuthenticateRequest(token ?? ""), cancellationToken).ConfigureAwait(false);
            var catalog = await transport.CallAsync<CatalogRequest, CatalogReply>(PoolMessageTypes.Catalog, new CatalogRequest(), cancellationToken).ConfigureAwait(false);
            return new PoolClient(transport, auth.Tenant, catalog);
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The read request for the whole of <paramref name="expert"/> into <paramref name="destination"/> (at least <c>expert.Length</c> bytes).</summary>
    public ReadRequest ExpertRequest(ExpertEntry expert, Memory<byte> destination) =>
        new(expert.RegionId, Catalog.GetRegion(expert.RegionId).Key, expert.Offset, destination[..checked((int)expert.Length)]);

    /// <summary>Reads the whole of <paramref name="expert"/> (gate, up, down) into <paramref name="destination"/>.</summary>
    public ValueTask<ReadStatus> ReadExpertAsync(ExpertEntry expert, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        Transport.ReadAsync(ExpertRequest(expert, destination), cancellationToken);

    /// <summary>Reads a dense tensor into <paramref name="destination"/> (at least <c>tensor.Length</c> bytes).</summary>
    public ValueTask<ReadStatus> ReadDenseAsync(DenseEntry tensor, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        Transport.ReadAsync(new ReadRequest(tensor.RegionId, Catalog.GetRegion(tensor.RegionId).Key, tensor.Offset, destination[..checked((int)tensor.Length)]), cancellationToken);

    /// <summary>Whether <paramref name="bytes"/> hash (xxHash64, seed 0) to <paramref name="checksum"/>.</summary>
    public static bool Verify(ReadOnlySpan<byte> bytes, ulong checksum) => XxHash64.HashToUInt64(bytes) == checksum;

    public ValueTask DisposeAsync() => Transport.DisposeAsync();
}
