using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Pool.Server.Serving;
using Fabric.Transport;

namespace Fabric.Pool.Tests;

public sealed class TenantTests
{
    private static readonly CatalogReply EmptyCatalog = new(ModelPresets.Tiny, [], [], []);

    [Fact]
    public void TokensFile_IsRead_AndTokensMatchByWholeOrSecret()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("tokens"), "# tenants\nalice:s3cret\n\nbob : hunter2 \n");
        var table = TenantTable.Load(dir.File("tokens"));
        Assert.Equal(["alice", "bob"], table.Names);
        Assert.Equal("alice", table.Authenticate("alice:s3cret"));
        Assert.Equal("bob", table.Authenticate("hunter2"));
        Assert.Null(table.Authenticate("bob:s3cret"));
        Assert.Null(table.Authenticate("wrong"));
        Assert.Null(table.Authenticate(""));
    }

    [Theory]
    [InlineData("alice\n", "line 1: expected name:secret")]
    [InlineData("alice:a\nalice:b\n", "line 2: tenant 'alice' is listed twice")]
    [InlineData("# nobody\n", "lists no tenant")]
    public void BadTokensFile_IsOneSentence(string text, string expected)
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("tokens"), text);
        var e = Assert.Throws<FabricException>(() => TenantTable.Load(dir.File("tokens")));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains(dir.File("tokens"), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Handler_RefusesCatalogAndReads_UntilAuthenticated()
    {
        var handler = new PoolControlHandler(EmptyCatalog, new TenantTable([("alice", "pw")]));
        var session = new ServerSession("tcp", null);

        var refused = await Assert.ThrowsAsync<ControlException>(async () => await handler.HandleAsync(session, ControlMessage.Create(PoolMessageTypes.Catalog, new CatalogRequest()), default));
        Assert.Equal(ControlErrorCode.Unauthorized, refused.Code);
        Assert.False(handler.Authorize(session, null!));

        var wrong = await Assert.ThrowsAsync<ControlException>(async () => await handler.HandleAsync(session, ControlMessage.Create(PoolMessageTypes.Authenticate, new AuthenticateRequest("nope")), default));
        Assert.StartsWith("unauthorized", wrong.Message, StringComparison.Ordinal);
        Assert.Null(session.Principal);
        Assert.Equal(1, handler.AuthFailures);

        var reply = await handler.HandleAsync(session, ControlMessage.Create(PoolMessageTypes.Authenticate, new AuthenticateRequest("alice:pw")), default);
        Assert.Equal("alice", reply.Read<AuthenticateReply>().Tenant);
        Assert.Equal("alice", session.Principal);
        Assert.True(handler.Authorize(session, null!));
        var catalog = await handler.HandleAsync(session, ControlMessage.Create(PoolMessageTypes.Catalog, new CatalogRequest()), default);
        Assert.Equal(ModelPresets.Tiny, catalog.Read<CatalogReply>().Model);
    }

    [Fact]
    public async Task Handler_RefusesUnknownTypesAndMalformedBodies()
    {
        var handler = new PoolControlHandler(EmptyCatalog, null);
        var session = new ServerSession("tcp", null);
        var unknown = await Assert.ThrowsAsync<ControlException>(async () => await handler.HandleAsync(session, new ControlMessage(177, new byte[] { 0xC0 }), default));
        Assert.Equal(ControlErrorCode.UnknownMessageType, unknown.Code);
        var malformed = await Assert.ThrowsAsync<ControlException>(async () => await handler.HandleAsync(session, new ControlMessage(PoolMessageTypes.Authenticate, new byte[] { 0xFF, 0x01 }), default));
        Assert.Equal(ControlErrorCode.MalformedMessage, malformed.Code);
    }

    [Fact]
    public void Counters_SplitByTenantAndTransport()
    {
        var counters = new TenantCounters();
        var a = new ServerSession("tcp", null) { Principal = "alice" };
        var b = new ServerSession("shm", null) { Principal = "alice" };
        counters.Record(a, ReadStatus.Ok, 100);
        counters.Record(a, ReadStatus.Ok, 50);
        counters.Record(b, ReadStatus.OutOfRange, 0);
        var snapshot = counters.Snapshot();
        Assert.Contains(("alice", "tcp", 150L, 2L, 0L), snapshot);
        Assert.Contains(("alice", "shm", 0L, 0L, 1L), snapshot);
    }
}
