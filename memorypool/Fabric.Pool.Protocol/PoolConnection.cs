using Fabric.Transport;

namespace Fabric.Pool.Protocol;

/// <summary>
/// One authenticated connection to one pool: the transport client, the tenant the pool took the token for, and the
/// pool's catalog, indexed. Owns the transport client and disposes it. <see cref="PoolReader"/> builds on it; use it
/// directly only to talk to one pool as it is (raw, unverified reads).
/// </summary>
public sealed class PoolConnection : IAsyncDisposable
{
    private PoolConnection(IFabricClient transport, string tenant, CatalogReply catalog)
    {
        Transport = transport;
        Tenant = tenant;
        Index = new CatalogIndex(catalog);
    }

    /// <summary>The underlying transport client (reads, control calls).</summary>
    public IFabricClient Transport { get; }

    /// <summary>The endpoint this connection reaches.</summary>
    public FabricEndpoint Endpoint => Transport.Endpoint;

    /// <summary>The tenant name the pool gave this client.</summary>
    public string Tenant { get; }

    /// <summary>The pool's catalog.</summary>
    public CatalogReply Catalog => Index.Catalog;

    /// <summary>The catalog, indexed for lookups by block.</summary>
    public CatalogIndex Index { get; }

    /// <summary>
    /// Connects to <paramref name="endpoint"/>, authenticates with <paramref name="token"/> and fetches the catalog.
    /// A wrong token throws <see cref="ControlException"/> (Unauthorized); an unreachable endpoint <see cref="EndpointException"/>.
    /// </summary>
    public static async Task<PoolConnection> ConnectAsync(FabricEndpoint endpoint, string? token, FabricClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        var transport = await FabricTransports.ConnectAsync(endpoint, options, cancellationToken).ConfigureAwait(false);
        try
        {
            var auth = await transport.CallAsync<AuthenticateRequest, AuthenticateReply>(PoolMessageTypes.Authenticate, new AuthenticateRequest(token ?? ""), cancellationToken).ConfigureAwait(false);
            var catalog = await transport.CallAsync<CatalogRequest, CatalogReply>(PoolMessageTypes.Catalog, new CatalogRequest(), cancellationToken).ConfigureAwait(false);
            return new PoolConnection(transport, auth.Tenant, catalog);
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public ValueTask DisposeAsync() => Transport.DisposeAsync();
}
