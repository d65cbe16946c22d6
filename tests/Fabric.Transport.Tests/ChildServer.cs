using Fabric.Transport.Conformance;
using Fabric.Transport.Host;
using Fabric.Transport.Shm;

namespace Fabric.Transport.Tests;

/// <summary>
/// The entry point of this test assembly when started as a process: <c>dotnet Fabric.Transport.Tests.dll serve
/// ENDPOINT</c> serves the conformance suite's default regions, prints the endpoint it serves on one line, and runs
/// until killed or until its stdin closes. Tests kill it with SIGKILL to see a real dead peer.
/// </summary>
public static class ChildServer
{
    public static async Task<int> Main(string[] args)
    {
        if (args is not ["serve", var listenText])
        {
            await Console.Error.WriteLineAsync("usage: Fabric.Transport.Tests.dll serve ENDPOINT");
            return 2;
        }
        var listen = FabricEndpoint.Parse(listenText);
        RegionSpec[] regions = [new(1, 1 << 20, 0xA11CE), new(2, (64 << 10) + 123, 0xB0B)];
        using RegionStore store = listen.Scheme == "shm" ? new ShmRegionStore(listen.Path, regions) : new HostRegionStore(regions);
        foreach (var region in store.Regions)
            RegionPattern.Fill(region);
        await using var server = await FabricServers.StartAsync(listen, store);
        Console.WriteLine(server.Endpoint);
        await Console.In.ReadToEndAsync();
        return 0;
    }
}
