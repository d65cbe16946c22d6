using System.Net.Sockets;
using Fabric.Common.Native;
using Fabric.Transport.Conformance;
using Fabric.Transport.Shm;

namespace Fabric.Transport.Tests;

/// <summary>The conformance suite over shm:// with real files under /dev/shm.</summary>
public sealed class ShmTransportTests : TransportConformanceTests
{
    private readonly FabricEndpoint _missing = FabricEndpoint.Parse($"shm:///dev/shm/fabric-test-missing-{Guid.NewGuid():N}");

    protected override FabricEndpoint UnreachableEndpoint => _missing;

    protected override bool ServerSeesReads => false;

    protected override RegionStore CreateStore(IReadOnlyList<RegionSpec> regions) =>
        new ShmRegionStore($"/dev/shm/fabric-test-{Guid.NewGuid():N}", regions);

    protected override async Task<IFabricServer> StartServerAsync(RegionStore store, FabricServerOptions options) =>
        await FabricServers.StartAsync(((ShmRegionStore)store).Endpoint, store, options);

    protected override Task KillServerAsync(IFabricServer server)
    {
        ((ShmFabricServer)server).Abort();
        return Task.CompletedTask;
    }

    protected override async Task<Stream?> OpenRawStreamAsync(IFabricServer server)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(server.Endpoint.Path + ".ctl"));
        // The server passes its memory file before any frame.
        DescriptorPassing.Receive(socket.SafeHandle, TimeSpan.FromSeconds(5)).Dispose();
        return new NetworkStream(socket, ownsSocket: true);
    }
}
