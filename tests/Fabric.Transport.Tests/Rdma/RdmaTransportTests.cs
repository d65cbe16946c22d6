using System.Net.Sockets;
using Fabric.Transport.Conformance;
using Fabric.Transport.Host;
using Fabric.Transport.Rdma;

namespace Fabric.Transport.Tests.Rdma;

/// <summary>
/// The conformance suite over rdma:// — runs where an RDMA device is active (real hardware or a soft-RoCE rxe device)
/// and is skipped with the probe's reason elsewhere. FABRIC_RDMA_TEST_HOST names the address to serve on (an address
/// of the RDMA netdev; default 127.0.0.1, which rdma_cm maps to the first active device).
/// </summary>
[RequiresRdmaDevice]
public sealed class RdmaTransportTests : TransportConformanceTests
{
    private static readonly string Host = Environment.GetEnvironmentVariable("FABRIC_RDMA_TEST_HOST") is { Length: > 0 } host ? host : "127.0.0.1";

    protected override FabricEndpoint UnreachableEndpoint => FabricEndpoint.Parse($"rdma://{Host}:1");

    // RDMA READs are served by the adapter; the server process never sees them.
    protected override bool ServerSeesReads => false;

    protected override RegionStore CreateStore(IReadOnlyList<RegionSpec> regions) => new HostRegionStore(regions);

    protected override async Task<IFabricServer> StartServerAsync(RegionStore store, FabricServerOptions options) =>
        await FabricServers.StartAsync(FabricEndpoint.Parse($"rdma://{Host}:0"), store, options);

    protected override Task KillServerAsync(IFabricServer server)
    {
        ((RdmaFabricServer)server).Abort();
        return Task.CompletedTask;
    }

    protected override async Task<Stream?> OpenRawStreamAsync(IFabricServer server)
    {
        // The control channel is the tcp framing on the same port.
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(Host, server.Endpoint.Port);
        return new NetworkStream(socket, ownsSocket: true);
    }
}
