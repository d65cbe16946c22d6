using Fabric.Transport.Host;
using Fabric.Transport.Rdma;

namespace Fabric.Transport.Tests.Rdma;

/// <summary>rdma:// on a machine without an RDMA device (here, where ibv_get_device_list fails with ENOSYS).</summary>
public sealed class RdmaNoDeviceTests
{
    [NoRdmaDeviceFact]
    public void Probe_NoDevice_SaysWhyInOneClause()
    {
        var probe = RdmaDevices.Probe();
        Assert.False(probe.IsUsable);
        // No kernel RDMA: "no RDMA device is available on this machine (ibv_get_device_list failed with ENOSYS ...)"; on a machine
        // without libibverbs1 the reason names the missing library instead.
        Assert.Contains("RDMA", probe.Reason, StringComparison.Ordinal);
        if (System.Runtime.InteropServices.NativeLibrary.TryLoad("libibverbs.so.1", out var verbs))
        {
            System.Runtime.InteropServices.NativeLibrary.Free(verbs);
            Assert.Contains("ibv_get_device_list", probe.Reason, StringComparison.Ordinal);
        }
        Assert.DoesNotContain('\n', probe.Reason);
    }

    [NoRdmaDeviceFact]
    public async Task Connect_NoDevice_FailsWithOneSentenceSuggestingTcpOrShm()
    {
        var error = await Assert.ThrowsAsync<EndpointException>(async () => await FabricTransports.ConnectAsync("rdma://127.0.0.1:1"));
        AssertOneSentenceNamingCauseAndAlternatives(error.Message, "rdma://127.0.0.1:1");
        Assert.Contains("tcp://127.0.0.1:1", error.Message, StringComparison.Ordinal);
    }

    [NoRdmaDeviceFact]
    public async Task Serve_NoDevice_FailsWithOneSentenceSuggestingTcpOrShm()
    {
        using var store = new HostRegionStore([new RegionSpec(1, 4096, 7)]);
        var error = await Assert.ThrowsAsync<EndpointException>(() => FabricServers.StartAsync(FabricEndpoint.Parse("rdma://127.0.0.1:0"), store));
        AssertOneSentenceNamingCauseAndAlternatives(error.Message, "rdma://127.0.0.1:0");
    }

    [NoRdmaDeviceFact]
    public async Task Serve_NoDevice_LeavesTheTcpPortFree()
    {
        // A failed rdma:// start must not leave its control listener behind: tcp:// can serve the same port at once.
        using var store = new HostRegionStore([new RegionSpec(1, 4096, 7)]);
        var tcp = await FabricServers.StartAsync(FabricEndpoint.Parse("tcp://127.0.0.1:0"), store);
        var port = tcp.Endpoint.Port;
        await tcp.DisposeAsync();
        await Assert.ThrowsAsync<EndpointException>(() => FabricServers.StartAsync(FabricEndpoint.Parse($"rdma://127.0.0.1:{port}"), store));
        await using var again = await FabricServers.StartAsync(FabricEndpoint.Parse($"tcp://127.0.0.1:{port}"), store);
        Assert.Equal(port, again.Endpoint.Port);
    }

    [NoRdmaDeviceFact]
    public void Auto_NoDevice_FallsBackToTcpAndSaysSo()
    {
        var lines = new List<string>();
        var endpoint = TransportSelection.Resolve("auto", "127.0.0.1", 7100, lines.Add);
        Assert.Equal(FabricEndpoint.Parse("tcp://127.0.0.1:7100"), endpoint);
        var line = Assert.Single(lines);
        Assert.StartsWith("transport: tcp", line, StringComparison.Ordinal);
        Assert.Contains(RdmaDevices.Probe().Reason, line, StringComparison.Ordinal);
    }

    [NoRdmaDeviceFact]
    public async Task Auto_NoDevice_ConnectsOverTcpToARealServer()
    {
        using var store = new HostRegionStore([new RegionSpec(3, 8192, 33)]);
        store.Find(3)!.Slice(100, 4).Fill(0x5A);
        await using var server = await FabricServers.StartAsync(FabricEndpoint.Parse("tcp://127.0.0.1:0"), store);
        var endpoint = TransportSelection.Apply("auto", FabricEndpoint.Parse($"rdma://127.0.0.1:{server.Endpoint.Port}"));
        await using var client = await FabricTransports.ConnectAsync(endpoint);
        var buffer = new byte[4];
        Assert.Equal(ReadStatus.Ok, await client.ReadAsync(new ReadRequest(3, 33, 100, buffer)));
        Assert.All(buffer, b => Assert.Equal(0x5A, b));
    }

    [Theory]
    [InlineData("tcp", "tcp://10.0.0.2:7100")]
    [InlineData("rdma", "rdma://10.0.0.2:7100")]
    [InlineData(" TCP ", "tcp://10.0.0.2:7100")]
    public void Resolve_ExplicitChoice_IsHonoured(string choice, string expected)
    {
        var lines = new List<string>();
        Assert.Equal(FabricEndpoint.Parse(expected), TransportSelection.Resolve(choice, "10.0.0.2", 7100, lines.Add));
        Assert.Single(lines);
    }

    [Fact]
    public void Resolve_Shm_UsesThePathOrSaysItIsMissing()
    {
        Assert.Equal(FabricEndpoint.Parse("shm:///dev/shm/fabric"), TransportSelection.Resolve("shm", "x", 1, shmPath: "/dev/shm/fabric"));
        var error = Assert.Throws<EndpointException>(() => TransportSelection.Resolve("shm", "x", 1));
        Assert.Contains("path", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_UnknownChoice_FailsWithOneSentence()
    {
        var error = Assert.Throws<EndpointException>(() => TransportSelection.Resolve("carrier-pigeon", "x", 1));
        Assert.Equal("'carrier-pigeon' is not a transport; expected one of auto, rdma, tcp, shm.", error.Message);
    }

    [Fact]
    public void Apply_ShmEndpoint_IsLeftAlone()
    {
        var shm = FabricEndpoint.Parse("shm:///dev/shm/fabric");
        Assert.Same(shm, TransportSelection.Apply("auto", shm));
    }

    private static void AssertOneSentenceNamingCauseAndAlternatives(string message, string endpoint)
    {
        Assert.StartsWith($"Cannot use {endpoint}: {RdmaDevices.Probe().Reason}; ", message, StringComparison.Ordinal);
        Assert.Contains("RDMA", message, StringComparison.Ordinal);
        Assert.Contains("tcp://", message, StringComparison.Ordinal);
        Assert.Contains("shm://", message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', message);
        Assert.EndsWith(".", message, StringComparison.Ordinal);
    }
}
