using Fabric.Pool.Protocol;
using Fabric.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fabric.Pool.Server.Serving;

/// <summary>
/// Answers the pool's control messages: authentication against the <see cref="TenantTable"/> (or open access when
/// there is none, every client becoming tenant "default"), then the catalog. Until a session has authenticated it
/// may send Authenticate only (<see cref="IsAuthenticated"/>, <see cref="AuthenticationTypes"/>: the transport closes
/// it on anything else) and reads nothing (<see cref="Authorize"/>); an Authenticate that fails, for any reason, leaves
/// the session unauthenticated even if it had authenticated before, and the
/// <see cref="MaxFailedAuthentications"/>th failure closes the session.
/// </summary>
public sealed class PoolControlHandler : IControlHandler
{
    /// <summary>The tenant every client becomes when the pool runs without a tokens file.</summary>
    public const string OpenTenant = "default";

    /// <summary>Refused authentications after which the pool closes the session.</summary>
    public const int MaxFailedAuthentications = 3;

    /// <summary>The control types a session may send before it has authenticated.</summary>
    public static IReadOnlySet<ushort> AuthenticationTypes { get; } = new HashSet<ushort> { PoolMessageTypes.Authenticate };

    private readonly ControlMessage _catalog;
    private readonly TenantTable? _tenants;
    private readonly ILogger _logger;
    private long _authFailures;

    /// <summary>Answers from <paramref name="catalog"/>; <paramref name="logger"/> hears of authentications (null: nobody).</summary>
    public PoolControlHandler(CatalogReply catalog, TenantTable? tenants, ILogger? logger = null)
    {
        _catalog = ControlMessage.Create(PoolMessageTypes.CatalogReplyType, catalog);
        _tenants = tenants;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Authentication attempts refused so far.</summary>
    public long AuthFailures => Interlocked.Read(ref _authFailures);

    /// <summary>Whether <paramref name="session"/> may read at all: it has authenticated, or the pool is open.</summary>
    public bool Authorize(ServerSession session, ExportedRegion region) => IsAuthenticated(session);

    /// <summary>Whether <paramref name="session"/> has authenticated, or the pool is open to every client.</summary>
    public bool IsAuthenticated(ServerSession session) => _tenants is null || session.Principal is not null;

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
                    var failures = session.CountFailedAuthentication();
                    _logger.LogWarning("{Transport} session {Session} from {Remote}: authentication refused ({Failures} of {Max})",
                        session.Transport, session.Id, session.Remote?.ToString() ?? "a local peer", failures, MaxFailedAuthentications);
                    if (failures >= MaxFailedAuthentications)
                    {
                        session.RequestClose($"{MaxFailedAuthentications} failed authentications");
                        throw new ControlException(ControlErrorCode.Unauthorized, $"unauthorized: the pool does not accept this token; the session is closed after {MaxFailedAuthentications} failed authentications.");
                    }
                    throw new ControlException(ControlErrorCode.Unauthorized, "unauthorized: the pool does not accept this token.");
                }
                session.Principal = tenant;
                _logger.LogDebug("{Transport} session {Session} authenticated as tenant {Tenant}", session.Transport, session.Id, tenant);
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
