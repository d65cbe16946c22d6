using System.Net.Sockets;
using Fabric.Transport.Conformance;
using Fabric.Transport.Host;
using Fabric.Transport.Tcp;

namespace Fabric.Transport.Tests;

/// <summary>The conformance suite over tcp:// on loopback, port 0.</summary>
public sealed class TcpTransportTests : TransportConformanceTests
{
    protected override FabricEndpoint UnreachableEndpoint => FabricEndpoint.Parse("tcp://127.0.0.1:1");

    protected override RegionStore CreateStore(IReadOnlyList<RegionSpec> regions) => new HostRegionStore(regions);

    protected override async Task<IFabricServer> StartServerAsync(RegionStore store, FabricServerOptions options) =>
        await FabricServers.StartAsync(FabricEndpoint.Parse("tcp://127.0.0.1:0"), store, options);

    protected override Task KillServerAsync(IFabricServer server)
    {
        ((TcpFabricServer)server).Abort();
        return Task.CompletedTask;
    }

    protected override async Task<Stream?> OpenRawStreamAsync(IFabricServer server)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", server.Endpoint.Port);
        return new NetworkStream(socket, ownsSocket: true);
    }
}
