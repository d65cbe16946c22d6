using Fabric.Sim.Topology;
using Fabric.Sim.Transport;
using Fabric.Transport;
using Fabric.Transport.Conformance;
using Fabric.Transport.Host;

namespace Fabric.Sim.Tests;

/// <summary>The transport conformance suite over sim://, on a modelled two-node machine with a 25 GB/s link.</summary>
[Collection(SimFabricCollection.Name)]
public sealed class SimTransportConformanceTests : TransportConformanceTests, IAsyncLifetime
{
    internal const string Machine = """
        name: conformance
        nodes:
          - { name: client, type: cpu, peak_flops: 1TFLOP/s }
          - { name: pool, type: dram }
        links:
          - { from: pool, to: client, bandwidth: 25GB/s, latency: 2us }
        """;

    private readonly SimFabric _fabric;

    public SimTransportConformanceTests()
    {
        SimFabric.Register();
        _fabric = new SimFabric(TopologyLoader.Load(Machine, "conformance"), "client");
    }

    protected override FabricEndpoint UnreachableEndpoint => FabricEndpoint.Parse("sim://nowhere");

    protected override RegionStore CreateStore(IReadOnlyList<RegionSpec> regions) => new HostRegionStore(regions);

    protected override Task<IFabricServer> StartServerAsync(RegionStore store, FabricServerOptions options) =>
        Task.FromResult<IFabricServer>(_fabric.StartServer("pool", store, options));

    protected override ValueTask<IFabricClient> ConnectAsync(IFabricServer server, FabricClientOptions? options = null) =>
        ValueTask.FromResult(_fabric.Connect(server.Endpoint.Host, "client", options));

    protected override Task KillServerAsync(IFabricServer server)
    {
        ((SimFabricServer)server).Abort();
        return Task.CompletedTask;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _fabric.DisposeAsync();
}

/// <summary>Tests that start sim:// servers share the process-wide endpoint registry, so they run one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class SimFabricCollection
{
    public const string Name = "sim-fabric";
}
