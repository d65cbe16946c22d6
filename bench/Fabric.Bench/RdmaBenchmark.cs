using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Fabric.Common;
using Fabric.Transport;
using Fabric.Transport.Host;
using Fabric.Transport.Rdma;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench rdma`: RDMA READ bandwidth (many reads in flight) and latency (one in flight) per size through the
/// rdma:// transport on this machine's RDMA device, each beside perftest's ib_read_bw / ib_read_lat run on the same
/// device in the same run. Without a device it says so in one sentence and exits 2.
/// </summary>
public sealed class RdmaBenchmark : IBenchmark
{
    private const uint RegionId = 1;
    private const ulong RegionKey = 0x5EED;

    private const string Usage = """
        usage: fabric bench rdma [--host ADDR] [--device DEV] [--sizes 4KiB,64KiB,1MiB,64MiB] [--seconds S] [--depth N] [--no-perftest] [--json PATH]

          --host         an address of the RDMA device's netdev to serve and connect on (default 127.0.0.1)
          --device       the verbs device for perftest's -d (default: its first device)
          --sizes        read sizes, comma-separated, with B/KiB/MiB suffixes (default: 4KiB,64KiB,1MiB,64MiB)
          --seconds      measuring time per size and per measurement (default: 1)
          --depth        reads kept in flight for the bandwidth figure (default: 16)
          --no-perftest  skip the ib_read_bw / ib_read_lat baselines (package perftest)
          --json         also write the results as a JSON array to PATH
        """;

    public string Name => "rdma";

    public string Summary => "RDMA READ GB/s and p50/p99 latency per size over rdma://, beside ib_read_bw / ib_read_lat";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = new BenchOptions(Name, args, ["--host", "--device", "--sizes", "--seconds", "--depth", "--json"], ["--no-perftest"]);
        if (options.Has("--help"))
        {
            Console.WriteLine(Usage);
            return 0;
        }
        var host = options.Text("--host") ?? "127.0.0.1";
        var device = options.Text("--device");
        var sizes = options.Sizes("--sizes", [4 << 10, 64 << 10, 1 << 20, 64 << 20], 1, 1 << 30);
        var seconds = options.Positive("--seconds", 1, max: 60);
        var depth = options.Int("--depth", 16, max: 1024);
        var wantPerftest = !options.Has("--no-perftest");

        var listen = new FabricEndpoint("rdma", host, 0, "");
        RdmaDevices.EnsureUsable(listen);
        Console.WriteLine($"rdma: {RdmaDevices.Probe().Reason}; serving one {ByteSize.FormatExact(sizes.Max() * 2L)} region on {host}...");
        var perftest = wantPerftest && PerftestRunner.IsInstalled;
        if (wantPerftest && !perftest)
            Console.WriteLine("  (perftest is not installed, so there is no ib_read_bw / ib_read_lat baseline: apt-get install perftest)");

        var largest = sizes.Max();
        using var store = new HostRegionStore([new RegionSpec(RegionId, largest * 2L, RegionKey)]);
        var region = store.Regions[0];
        for (long offset = 0; offset < region.Length; offset += 1 << 20)
            region.Slice(offset, (int)Math.Min(1 << 20, region.Length - offset)).Fill((byte)(offset >> 20));
        await using var server = await RdmaFabricServer.StartAsync(listen, store, cancellationToken: cancellationToken);
        await using var client = await RdmaFabricClient.ConnectAsync(server.Endpoint, FabricClientOptions.Default, new RdmaClientOptions { InlineContinuations = true }, cancellationToken);
        using var destination = new NativeBuffer(largest);

        Console.WriteLine($"  {"size",8} {"GB/s",8} {"ib_read_bw",11} {"ratio",6}   {"p50 µs",8} {"p99 µs",8} {"ib_read_lat",12} {"ratio",6}   (depth {depth}; targets: bw ratio ≥ 0.9, latency ratio ≤ 1.5)");
        var results = new List<RdmaResult>();
        foreach (var size in sizes)
        {
            var gbps = await MeasureBandwidth(client, destination, size, depth, seconds, cancellationToken);
            var (p50, p99) = await MeasureLatency(client, destination, size, seconds, cancellationToken);
            var baseBw = perftest ? await PerftestRunner.BandwidthGbpsAsync(device, host, size, cancellationToken) : null;
            var baseLat = perftest ? await PerftestRunner.LatencyUsAsync(device, host, size, cancellationToken) : null;
            var result = new RdmaResult(size, gbps, p50, p99, baseBw, baseBw > 0 ? gbps / baseBw : null, baseLat, baseLat > 0 ? p50 / baseLat : null);
            results.Add(result);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {ByteSize.FormatExact(size),8} {gbps,8:0.00} {Show(baseBw, "0.00"),11} {Show(result.BandwidthRatio, "0.00"),6}   {p50,8:0.0} {p99,8:0.0} {Show(baseLat, "0.0"),12} {Show(result.LatencyRatio, "0.00"),6}"));
        }

        if (options.Text("--json") is { } path)
        {
            await File.WriteAllTextAsync(path, JsonSerializer.Serialize(results, RdmaJson.Default.ListRdmaResult), cancellationToken);
            Console.WriteLine($"wrote {path}");
        }
        return 0;
    }

    private static string Show(double? value, string format) => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "-";

    /// <summary>GB/s (10^9 bytes) with <paramref name="depth"/> reads of <paramref name="size"/> kept in flight, as ib_read_bw does.</summary>
    private static async Task<double> MeasureBandwidth(IFabricClient client, NativeBuffer destination, int size, int depth, double seconds, CancellationToken cancellationToken)
    {
        await ReadOnce(client, destination, size, 0, cancellationToken);
        var bytes = 0L;
        var clock = Stopwatch.StartNew();
        var stopAt = TimeSpan.FromSeconds(seconds);
        async Task Worker(int lane)
        {
            var offset = (long)lane * size % Math.Max(1, destination.Length - size + 1);
            while (clock.Elapsed < stopAt)
            {
                await ReadOnce(client, destination, size, offset, cancellationToken);
                Interlocked.Add(ref bytes, size);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, depth).Select(Worker));
        return bytes / clock.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>p50 and p99 in µs of one read at a time, as ib_read_lat does.</summary>
    private static async Task<(double P50, double P99)> MeasureLatency(IFabricClient client, NativeBuffer destination, int size, double seconds, CancellationToken cancellationToken)
    {
        for (var i = 0; i < 10; i++)
            await ReadOnce(client, destination, size, 0, cancellationToken);
        var samples = new List<long>(100_000);
        var deadline = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        while ((Stopwatch.GetTimestamp() < deadline || samples.Count < 5) && samples.Count < 1_000_000)
        {
            var start = Stopwatch.GetTimestamp();
            await ReadOnce(client, destination, size, 0, cancellationToken);
            samples.Add(Stopwatch.GetTimestamp() - start);
        }
        samples.Sort();
        double Us(long ticks) => ticks * 1e6 / Stopwatch.Frequency;
        return (Us(samples[samples.Count / 2]), Us(samples[Math.Min(samples.Count - 1, (int)(samples.Count * 0.99))]));
    }

    private static async ValueTask ReadOnce(IFabricClient client, NativeBuffer destination, int size, long offset, CancellationToken cancellationToken)
    {
        var status = await client.ReadAsync(new ReadRequest(RegionId, RegionKey, offset, destination.Memory[..size]), cancellationToken);
        if (status != ReadStatus.Ok)
            throw new FabricException($"A benchmark read of {size} bytes from {client.Endpoint} failed: {status.Describe()}{(client is RdmaFabricClient { FailureReason: { } why } ? $" ({why})" : "")}.");
    }
}

/// <summary>Runs perftest's ib_read_bw / ib_read_lat server and client on this machine and reads the one number they print.</summary>
internal static class PerftestRunner
{
    public static bool IsInstalled => FindOnPath("ib_read_bw") is not null && FindOnPath("ib_read_lat") is not null;

    /// <summary>ib_read_bw's average in GB/s (it prints MiB/s).</summary>
    public static async Task<double?> BandwidthGbpsAsync(string? device, string host, int size, CancellationToken cancellationToken)
    {
        var iterations = (int)Math.Clamp((4L << 30) / size, 100, 20_000);
        var mibPerSecond = await RunAsync("ib_read_bw", device, host, ["-s", Invariant(size), "-n", Invariant(iterations), "-F", "--output=bandwidth"], cancellationToken);
        return mibPerSecond * 1048576 / 1e9;
    }

    /// <summary>ib_read_lat's latency in µs.</summary>
    public static Task<double?> LatencyUsAsync(string? device, string host, int size, CancellationToken cancellationToken) =>
        RunAsync("ib_read_lat", device, host, ["-s", Invariant(size), "-n", "5000", "-F", "--output=latency"], cancellationToken);

    private static async Task<double?> RunAsync(string tool, string? device, string host, string[] arguments, CancellationToken cancellationToken)
    {
        var port = Invariant(18515 + Random.Shared.Next(1, 2000));
        string[] common = device is null ? [.. arguments, "-p", port] : [.. arguments, "-p", port, "-d", device];
        using var server = Start(tool, common);
        await Task.Delay(500, cancellationToken);
        using var client = Start(tool, [.. common, host]);
        var output = client.StandardOutput.ReadToEndAsync(cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await client.WaitForExitAsync(limit.Token);
            await server.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            client.Kill();
            server.Kill();
            return null;
        }
        foreach (var line in (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Reverse())
        {
            if (double.TryParse(line, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                return value;
        }
        return null;
    }

    private static Process Start(string tool, string[] arguments)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        return process;
    }

    private static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, tool))
            .FirstOrDefault(File.Exists);

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One row of `./fabric bench rdma --json`.</summary>
public sealed record RdmaResult(
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    [property: JsonPropertyName("gbps")] double Gbps,
    [property: JsonPropertyName("p50_us")] double P50Us,
    [property: JsonPropertyName("p99_us")] double P99Us,
    [property: JsonPropertyName("ib_read_bw_gbps")] double? IbReadBwGbps,
    [property: JsonPropertyName("bw_ratio")] double? BandwidthRatio,
    [property: JsonPropertyName("ib_read_lat_us")] double? IbReadLatUs,
    [property: JsonPropertyName("lat_ratio")] double? LatencyRatio);

[JsonSerializable(typeof(List<RdmaResult>))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class RdmaJson : JsonSerializerContext;
