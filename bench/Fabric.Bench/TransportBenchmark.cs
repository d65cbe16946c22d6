using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Fabric.Common;
using Fabric.Transport;
using Fabric.Transport.Host;
using Fabric.Transport.Shm;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench transport`: one-sided read bandwidth and latency per size over shm and tcp on this machine, each
/// beside its baseline measured in the same run (single-thread memcpy for shm, a raw loopback socket for tcp).
/// </summary>
public sealed class TransportBenchmark : IBenchmark
{
    private const uint RegionId = 1;
    private const ulong RegionKey = 0x5EED;

    private const string Usage = """
        usage: fabric bench transport [--transport shm|tcp] [--sizes 4KiB,64KiB,1MiB,16MiB,64MiB] [--seconds S] [--json PATH]

          --transport  which backend to measure (default: both)
          --sizes      read sizes, comma-separated, with B/KiB/MiB suffixes (default: 4KiB,64KiB,1MiB,16MiB,64MiB)
          --seconds    measuring time per size and per side (default: 0.5)
          --json       also write the results as a JSON array to PATH
        """;

    public string Name => "transport";

    public string Summary => "read GB/s and p50/p99 latency per size over shm and tcp, beside memcpy / raw socket";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = new BenchOptions(Name, args, ["--transport", "--sizes", "--seconds", "--json"]);
        if (options.Has("--help"))
        {
            Console.WriteLine(Usage);
            return 0;
        }
        string[] transports = options.Choice("--transport", null, "shm", "tcp") is { } one ? [one] : ["shm", "tcp"];
        var sizes = options.Sizes("--sizes", [4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20], 1, 1 << 30);
        var secondsPerSize = options.Positive("--seconds", 0.5, max: 60);

        var results = new List<TransportResult>();
        var largest = sizes.Max();
        foreach (var transport in transports)
        {
            Console.WriteLine($"{transport}: serving one {ByteSize.FormatExact(largest)} region on loopback...");
            Console.WriteLine($"  {"size",8} {"GB/s",8} {"p50 µs",9} {"p99 µs",9} {"baseline GB/s",14} {"ratio",6}   ({transport} vs {Baseline(transport)})");
            await using var target = await ReadTarget.StartAsync(transport, largest, cancellationToken);
            await using var baseline = await BaselineTarget.StartAsync(transport, largest, cancellationToken);
            foreach (var size in sizes)
            {
                var (measured, reference) = await MeasurePair(size, secondsPerSize, target.ReadOnceAsync, baseline.MoveOnceAsync, cancellationToken);
                var result = new TransportResult(transport, size, measured.Gbps, measured.P50Us, measured.P99Us, reference.Gbps,
                    reference.Gbps > 0 ? measured.Gbps / reference.Gbps : 0, measured.Count, reference.P50Us);
                results.Add(result);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {ByteSize.FormatExact(size),8} {result.Gbps,8:0.00} {result.P50Us,9:0.0} {result.P99Us,9:0.0} {result.BaselineGbps,14:0.00} {result.Ratio,6:0.00}"));
            }
        }

        if (options.Text("--json") is { } path)
        {
            await File.WriteAllTextAsync(path, JsonSerializer.Serialize(results, TransportJson.Default.ListTransportResult), cancellationToken);
            Console.WriteLine($"wrote {path}");
        }
        return 0;
    }

    private static string Baseline(string transport) => transport == "shm" ? "single-thread memcpy" : "raw loopback socket";

    /// <summary>
    /// Runs the transport and its baseline back to back (one in flight), alternating in slices of about 50 ms for about
    /// <paramref name="seconds"/> each, so both see the same machine load; a warm-up first.
    /// </summary>
    private static async Task<(Measurement Measured, Measurement Baseline)> MeasurePair(int size, double seconds,
        Func<int, CancellationToken, ValueTask> measured, Func<int, CancellationToken, ValueTask> baseline, CancellationToken cancellationToken)
    {
        for (var i = 0; i < 3; i++)
        {
            await measured(size, cancellationToken);
            await baseline(size, cancellationToken);
        }
        var measuredSamples = new List<long>(4096);
        var baselineSamples = new List<long>(4096);
        var slice = (long)(0.05 * Stopwatch.Frequency);
        var deadline = (long)(seconds * Stopwatch.Frequency);
        long measuredTicks = 0, baselineTicks = 0;
        while ((measuredTicks < deadline || measuredSamples.Count < 5 || baselineSamples.Count < 5) && measuredSamples.Count < 200_000)
        {
            measuredTicks += await RunSlice(size, slice, measured, measuredSamples, cancellationToken);
            baselineTicks += await RunSlice(size, slice, baseline, baselineSamples, cancellationToken);
        }
        return (Summarize(size, measuredSamples), Summarize(size, baselineSamples));
    }

    private static async Task<long> RunSlice(int size, long ticks, Func<int, CancellationToken, ValueTask> once, List<long> samples, CancellationToken cancellationToken)
    {
        long spent = 0;
        var count = 0;
        while (spent < ticks || count < 2)
        {
            var start = Stopwatch.GetTimestamp();
            await once(size, cancellationToken);
            var took = Stopwatch.GetTimestamp() - start;
            samples.Add(took);
            spent += took;
            count++;
        }
        return spent;
    }

    private static Measurement Summarize(int size, List<long> samples)
    {
        var elapsed = samples.Sum();
        samples.Sort();
        double Us(long ticks) => ticks * 1e6 / Stopwatch.Frequency;
        return new Measurement(
            (double)size * samples.Count / (elapsed / (double)Stopwatch.Frequency) / 1e9,
            Us(samples[samples.Count / 2]),
            Us(samples[Math.Min(samples.Count - 1, (int)(samples.Count * 0.99))]),
            samples.Count);
    }

    private readonly record struct Measurement(double Gbps, double P50Us, double P99Us, int Count);

    /// <summary>A server and a client of one transport in this process, reading into one native destination.</summary>
    private sealed class ReadTarget : IAsyncDisposable
    {
        private readonly RegionStore _store;
        private readonly IFabricServer _server;
        private readonly IFabricClient _client;
        private readonly NativeBuffer _destination;
        private readonly long _regionBytes;
        private long _nextOffset;

        private ReadTarget(RegionStore store, IFabricServer server, IFabricClient client, NativeBuffer destination)
        {
            _store = store;
            _server = server;
            _client = client;
            _destination = destination;
            _regionBytes = store.Regions[0].Length;
        }

        public static async Task<ReadTarget> StartAsync(string transport, int largest, CancellationToken cancellationToken)
        {
            var regions = new[] { new RegionSpec(RegionId, largest * 2L, RegionKey) };
            RegionStore store = transport == "shm"
                ? new ShmRegionStore($"/dev/shm/fabric-bench-{Environment.ProcessId}", regions)
                : new HostRegionStore(regions);
            var region = store.Regions[0];
            for (long offset = 0; offset < region.Length; offset += 1 << 20)
                region.Slice(offset, (int)Math.Min(1 << 20, region.Length - offset)).Fill((byte)(offset >> 20));
            var listen = transport == "shm" ? ((ShmRegionStore)store).Endpoint : FabricEndpoint.Parse("tcp://127.0.0.1:0");
            var server = await FabricServers.StartAsync(listen, store, cancellationToken: cancellationToken);
            var client = await FabricTransports.ConnectAsync(server.Endpoint, cancellationToken: cancellationToken);
            return new ReadTarget(store, server, client, new NativeBuffer(largest));
        }

        /// <summary>Reads <paramref name="size"/> bytes at a moving offset so each read touches fresh lines of the region.</summary>
        public async ValueTask ReadOnceAsync(int size, CancellationToken cancellationToken)
        {
            var offset = _nextOffset + size <= _regionBytes ? _nextOffset : 0;
            _nextOffset = offset + size;
            var status = await _client.ReadAsync(new ReadRequest(RegionId, RegionKey, offset, _destination.Memory[..size]), cancellationToken);
            if (status != ReadStatus.Ok)
                throw new FabricException($"A benchmark read of {size} bytes from {_client.Endpoint} failed: {status.Describe()}.");
        }

        public async ValueTask DisposeAsync()
        {
            await _client.DisposeAsync();
            await _server.DisposeAsync();
            _store.Dispose();
            _destination.Dispose();
        }
    }
}

/// <summary>One row of `./fabric bench transport --json`.</summary>
public sealed record TransportResult(
    [property: JsonPropertyName("transport")] string Transport,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    [property: JsonPropertyName("gbps")] double Gbps,
    [property: JsonPropertyName("p50_us")] double P50Us,
    [property: JsonPropertyName("p99_us")] double P99Us,
    [property: JsonPropertyName("baseline_gbps")] double BaselineGbps,
    [property: JsonPropertyName("ratio")] double Ratio,
    [property: JsonPropertyName("reads")] int Reads,
    [property: JsonPropertyName("baseline_p50_us")] double BaselineP50Us);

[JsonSerializable(typeof(List<TransportResult>))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class TransportJson : JsonSerializerContext;
