using System.Diagnostics;
using Fabric.Transport;

namespace Fabric.Bench;

/// <summary>
/// `./fabric demo` until the engine exists: serves one region over tcp and shm on loopback, reads it back through
/// each, checks every byte and prints a short summary.
/// </summary>
public sealed class DemoBenchmark : IBenchmark
{
    private const int RegionBytes = 32 << 20;
    private const uint RegionId = 1;
    private const ulong RegionKey = 0xDE30;

    public string Name => "demo";

    public string Summary => "serve a region over tcp and shm on loopback, read it back and verify it (temporary demo)";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var spec = new[] { new RegionSpec(RegionId, RegionBytes, RegionKey) };
        using var host = new HostRegionStore(spec);
        using var shm = new ShmRegionStore($"/dev/shm/fabric-demo-{Environment.ProcessId}", spec);
        Fill(host.Regions[0]);
        Fill(shm.Regions[0]);
        var failures = 0;
        failures += await RoundTripAsync(FabricEndpoint.Parse("tcp://127.0.0.1:0"), host, cancellationToken);
        failures += await RoundTripAsync(shm.Endpoint, shm, cancellationToken);
        Console.WriteLine(failures == 0 ? "demo: both transports returned every byte intact." : $"demo: {failures} transport(s) returned wrong bytes.");
        return failures == 0 ? 0 : 1;
    }

    private static async Task<int> RoundTripAsync(FabricEndpoint listen, RegionStore store, CancellationToken cancellationToken)
    {
        await using var server = await FabricServers.StartAsync(listen, store, cancellationToken: cancellationToken);
        await using var client = await FabricTransports.ConnectAsync(server.Endpoint, cancellationToken: cancellationToken);
        using var destination = new NativeBuffer(RegionBytes);
        const int Chunk = 1 << 20;
        var requests = Enumerable.Range(0, RegionBytes / Chunk)
            .Select(i => new ReadRequest(RegionId, RegionKey, (long)i * Chunk, destination.Memory.Slice(i * Chunk, Chunk)))
            .ToArray();
        var statuses = new ReadStatus[requests.Length];
        var clock = Stopwatch.StartNew();
        await client.ReadBatchAsync(requests, statuses, cancellationToken);
        clock.Stop();
        var intact = statuses.All(s => s == ReadStatus.Ok) && destination.Span.SequenceEqual(store.Regions[0].Slice(0, RegionBytes));
        Console.WriteLine($"{server.Endpoint,-40} {RegionBytes >> 20} MiB in {requests.Length} reads: {clock.Elapsed.TotalMilliseconds:0.0} ms "
            + $"({RegionBytes / clock.Elapsed.TotalSeconds / 1e9:0.00} GB/s), {(intact ? "verified" : "WRONG BYTES")}");
        return intact ? 0 : 1;
    }

    private static void Fill(ExportedRegion region)
    {
        var random = new Random(42);
        random.NextBytes(region.Slice(0, (int)region.Length));
    }
}
