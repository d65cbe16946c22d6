using Fabric.Pool.Protocol;
using Fabric.Transport;

namespace Fabric.Pool.Server.Serving;

/// <summary>
/// Answers the pool's control messages: authentication against the <see cref="TenantTable"/> (or open access when
/// there is none, every client becoming tenant "default"), then the catalog. Until a session has authenticated it
/// gets "unauthorized" for the catalog and every read (<see cref="Authorize"/>); an Authenticate that fails, for any
/// reason, leaves the session unauthenticated even if it had authenticated before.
/// </summary>
public sealed class PoolControlHandler : IControlHandler
{
    /// <summary>The tenant every client becomes when the pool runs without a tokens file.</summary>
    public const string OpenTenant = "default";

    private readonly ControlMessage _catalog;
    private readonly TenantTable? _tenants;
    private long _authFailures;

    public PoolControlHandler(CatalogReply catalog, TenantTable? tenants)
    {
        _catalog = ControlMessage.Create(PoolMessageTypes.CatalogReplyType, catalog);
        _tenants = tenants;
    }

    /// <summary>Authentication attempts refused so far.</summary>
    public long AuthFailures => Interlocked.Read(ref _authFailures);

    /// <summary>Whether <paramref name="session"/> may read at all: it has authenticated, or the pool is open.</summary>
    public bool Authorize(ServerSession session, ExportedRegion region) => _tenants is null || session.Principal is not null;

    public ValueTask<ControlMessage> HandleAsync(ServerSession session, ControlMessage request, CancellationToken cancellationToken)
    {
        switch (request.Type)
        {
            case PoolMessageTypes.Authenticate:
                // Whatever the outcome, the session no longer holds the rights of an earlier authentication.
                session.Principal = null;
                var token = request.Read<AuthenticateRequest>().Token
                    ?? throw new ControlException(ControlErrorCode.MalformedMessage, $"Control message type {request.Type} has a malformed body: the token is nil.");
                var tenant = _tenants is null ? OpenTenant : _tenants.Authenticate(token);
                if (tenant is null)
                {
                    Interlocked.Increment(ref _authFailures);
                    throw new ControlException(ControlErrorCode.Unauthorized, "unauthorized: the pool does not accept this token.");
                }
                session.Principal = tenant;
                return ValueTask.FromResult(ControlMessage.Create(PoolMessageTypes.AuthenticateReplyType, new AuthenticateReply(tenant)));

            case PoolMessageTypes.Catalog:
                _ = request.Read<CatalogRequest>();
                if (_tenants is not null && session.Principal is null)
                    throw new ControlException(ControlErrorCode.Unauthorized, "unauthorized: authenticate with a valid token before asking for the catalog.");
                return ValueTask.FromResult(_catalog);

            default:
                throw new ControlException(ControlErrorCode.UnknownMessageType, $"The pool does not know control message type {request.Type}.");
        }
    }
}
