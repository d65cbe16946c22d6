using System.Diagnostics;
using System.Globalization;
using System.IO.Hashing;
using System.Net.Sockets;
using System.Reflection;
using Fabric.Bench.Engine;
using Fabric.Common;
using Fabric.Pool.Protocol;
using Fabric.Transport;

namespace Fabric.Bench;

/// <summary>
/// <c>bench soak [--preset tiny|small] [--engines 8] [--in-flight 8] [--minutes 10]</c>: one fabric-pool child process
/// read for the whole run by N readers (half tcp, half shm) fetching random experts and checking every checksum, by
/// reader child processes killed with SIGKILL and restarted, and by a probe client whose read latency is measured. The
/// second half adds a misbehaving client: control floods whose replies it never reads, partial frames, malformed
/// frames, reconnect storms, failed authentications. Reports errors, the pool's RSS and descriptors at start, middle
/// and end, and the probe's p50/p99 without and with the misbehaving client, as ratios.
/// </summary>
public sealed class SoakBenchmark : IBenchmark
{
    public string Name => "soak";

    public string Summary => "pool + readers + killed clients + a misbehaving client for N minutes: errors, RSS/fd growth, probe latency";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        if (args.Length == 3 && args[0] == "--reader")
            return await ReaderChildAsync(args[1], args[2], cancellationToken);
        var settings = new BenchOptions(Name, args, ["--preset", "--engines", "--in-flight", "--minutes"]);
        if (settings.Has("--help"))
        {
            Console.WriteLine("usage: fabric bench soak [--preset tiny|small|medium] [--engines N] [--in-flight N] [--minutes M]");
            return 0;
        }
        var readers = settings.Int("--engines", 8);
        var inFlight = settings.Int("--in-flight", 8, max: 1024);
        var minutes = settings.Positive("--minutes", 10, max: 24 * 60);
        var model = ModelCache.Resolve(null, settings.Text("--preset") ?? "tiny");
        var tokens = Path.Combine(Path.GetTempPath(), $"fabric-soak-tokens-{Environment.ProcessId}");
        await File.WriteAllTextAsync(tokens, "soak:secret\n", cancellationToken);
        var shmPath = $"/dev/shm/fabric-soak-{Environment.ProcessId}";
        try
        {
            await using var pool = await PoolChild.StartAsync(model, tokens, shmPath, cancellationToken);
            var endpoints = new[] { pool.Endpoint("tcp"), pool.Endpoint("shm") };
            var counters = new Counters();
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var work = new List<Task>();
            for (var i = 0; i < readers; i++)
                work.Add(ReadLoopAsync(endpoints[i % 2], inFlight, counters, stop.Token));
            work.Add(KilledReadersAsync(pool.Endpoint("tcp"), counters, stop.Token));
            var probe = new Probe();
            work.Add(probe.RunAsync(pool.Endpoint("tcp"), counters, stop.Token));

            var total = TimeSpan.FromMinutes(minutes);
            await Task.Delay(total / 10, cancellationToken);
            var start = Footprint(pool.ProcessId);
            probe.Phase = 0;
            await Task.Delay(total * 0.4, cancellationToken);
            var middle = Footprint(pool.ProcessId);
            probe.Phase = 1;
            var misbehaving = MisbehaveAsync(pool.Endpoint("tcp"), counters, stop.Token);
            await Task.Delay(total * 0.5, cancellationToken);
            var end = Footprint(pool.ProcessId);
            await stop.CancelAsync();
            await Task.WhenAll(work.Append(misbehaving)).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);

            var (quietP50, quietP99) = probe.Percentiles(0);
            var (noisyP50, noisyP99) = probe.Percentiles(1);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"soak {minutes:0.##} min, model {model}: {readers} readers ({inFlight} in flight each, tcp and shm), readers killed -9: {counters.Killed}, misbehaving actions: {counters.Misbehaved}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"reads ok {counters.Reads:N0}, errors {counters.Errors} (bad status or checksum), reconnects {counters.Reconnects}"));
            Console.WriteLine($"{"pool",-6} {"start",12} {"middle",12} {"end",12} {"end ÷ start",12}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"RSS",-6} {start.Rss / 1048576.0,9:F1} MiB {middle.Rss / 1048576.0,9:F1} MiB {end.Rss / 1048576.0,9:F1} MiB {(double)end.Rss / start.Rss,11:F3}×"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"fds",-6} {start.Fds,12} {middle.Fds,12} {end.Fds,12} {(double)end.Fds / start.Fds,11:F3}×"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"probe read latency without the misbehaving client: p50 {quietP50:F0} µs, p99 {quietP99:F0} µs (p99 ÷ p50 {quietP99 / quietP50:F2}×)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"probe read latency with it:                       p50 {noisyP50:F0} µs, p99 {noisyP99:F0} µs (p99 ÷ quiet p99 {noisyP99 / quietP99:F2}×)"));
            return counters.Errors == 0 ? 0 : 1;
        }
        finally
        {
            File.Delete(tokens);
        }
    }

    private static (long Rss, int Fds) Footprint(int pid)
    {
        var rss = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        var kib = long.Parse(rss["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return (kib * 1024, Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length);
    }

    /// <summary>Reads random whole experts with <paramref name="inFlight"/> in flight, checking each checksum, reconnecting when the connection ends.</summary>
    private static async Task ReadLoopAsync(string endpoint, int inFlight, Counters counters, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var client = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(endpoint), "soak:secret", cancellationToken: cancellationToken);
                var experts = client.Catalog.Experts;
                await Task.WhenAll(Enumerable.Range(0, inFlight).Select(async lane =>
                {
                    using var buffer = new NativeBuffer(experts.Max(e => e.Length));
                    var random = new Random(lane);
                    while (!cancellationToken.IsCancellationRequested)
                    {
                        var expert = experts[random.Next(experts.Length)];
                        var memory = buffer.Memory[..(int)expert.Length];
                        var status = await client.Transport.ReadAsync(new ReadRequest(expert.RegionId, client.Catalog.GetRegion(expert.RegionId).Key, expert.Offset, memory), cancellationToken);
                        if (status != ReadStatus.Ok || XxHash64.HashToUInt64(memory.Span) != expert.Checksum)
                            Interlocked.Increment(ref counters.Errors);
                        else
                            Interlocked.Increment(ref counters.Reads);
                    }
                }));
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (!cancellationToken.IsCancellationRequested)
                Interlocked.Increment(ref counters.Reconnects);
        }
    }

    /// <summary>Starts a reader child process, lets it read for a moment, kills it with SIGKILL; again and again.</summary>
    private static async Task KilledReadersAsync(string endpoint, Counters counters, CancellationToken cancellationToken)
    {
        var self = Assembly.GetEntryAssembly()!.Location;
        while (!cancellationToken.IsCancellationRequested)
        {
            using var child = Process.Start(new ProcessStartInfo("dotnet", $"\"{self}\" soak --reader {endpoint} soak:secret") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true })!;
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Stopping: the child is killed below all the same.
            }
            child.Kill(entireProcessTree: true);
            await child.WaitForExitAsync(CancellationToken.None);
            Interlocked.Increment(ref counters.Killed);
        }
    }

    /// <summary>The child of <see cref="KilledReadersAsync"/>: reads until it is killed.</summary>
    private static async Task<int> ReaderChildAsync(string endpoint, string token, CancellationToken cancellationToken)
    {
        await using var client = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(endpoint), token, cancellationToken: cancellationToken);
        using var buffer = new NativeBuffer(client.Catalog.Experts.Max(e => e.Length));
        for (var i = 0; !cancellationToken.IsCancellationRequested; i++)
        {
            var expert = client.Catalog.Experts[i % client.Catalog.Experts.Length];
            _ = await client.Transport.ReadAsync(new ReadRequest(expert.RegionId, client.Catalog.GetRegion(expert.RegionId).Key, expert.Offset, buffer.Memory[..(int)expert.Length]), cancellationToken);
        }
        return 0;
    }

    /// <summary>Unread control floods, partial frames, malformed frames, reconnect storms and failed authentications, in turn.</summary>
    private static async Task MisbehaveAsync(string endpoint, Counters counters, CancellationToken cancellationToken)
    {
        var tcp = FabricEndpoint.Parse(endpoint);
        var flood = Frames.Flood("soak:secret", 200_000);
        var held = new List<TcpClient>();
        try
        {
            for (var round = 0; !cancellationToken.IsCancellationRequested; round++)
            {
                var socket = new TcpClient();
                await socket.ConnectAsync(tcp.Host, tcp.Port, cancellationToken);
                held.Add(socket);
                switch (round % 5)
                {
                    case 0:
                        // Never reads its replies; the write stalls once the pool stops reading.
                        _ = socket.GetStream().WriteAsync(flood, cancellationToken).AsTask().ContinueWith(static t => t.Exception, TaskScheduler.Default);
                        break;
                    case 1:
                        await socket.GetStream().WriteAsync(Frames.Partial(), cancellationToken);
                        break;
                    case 2:
                        await socket.GetStream().WriteAsync(Enumerable.Range(0, 512).Select(i => (byte)(i * 31 + round)).ToArray(), cancellationToken);
                        break;
                    case 3:
                        for (var i = 0; i < 50; i++)
                        {
                            using var storm = new TcpClient();
                            await storm.ConnectAsync(tcp.Host, tcp.Port, cancellationToken);
                        }
                        break;
                    default:
                        await socket.GetStream().WriteAsync(Frames.Flood("soak:wrong", 0).Concat(Frames.Flood("soak:wrong", 0).Skip(32)).Concat(Frames.Flood("soak:wrong", 0).Skip(32)).ToArray(), cancellationToken);
                        break;
                }
                Interlocked.Increment(ref counters.Misbehaved);
                if (held.Count > 16)
                {
                    held[0].Dispose();
                    held.RemoveAt(0);
                }
                await Task.Delay(200, cancellationToken);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException)
        {
            // Stopping, or the pool closed the misbehaving connection first: both are the point.
        }
        finally
        {
            foreach (var socket in held)
                socket.Dispose();
        }
    }

    private sealed class Counters
    {
        public long Reads;
        public long Errors;
        public long Reconnects;
        public long Killed;
        public long Misbehaved;
    }

    /// <summary>One read at a time of a random expert over tcp, its latency recorded per phase (0 quiet, 1 with the misbehaving client).</summary>
    private sealed class Probe
    {
        private readonly List<double>[] _latencies = [[], []];

        public volatile int Phase = -1;

        public async Task RunAsync(string endpoint, Counters counters, CancellationToken cancellationToken)
        {
            try
            {
                await using var client = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(endpoint), "soak:secret", cancellationToken: cancellationToken);
                using var buffer = new NativeBuffer(client.Catalog.Experts.Max(e => e.Length));
                var random = new Random(7);
                while (!cancellationToken.IsCancellationRequested)
                {
                    var expert = client.Catalog.Experts[random.Next(client.Catalog.Experts.Length)];
                    var started = Stopwatch.GetTimestamp();
                    var status = await client.Transport.ReadAsync(new ReadRequest(expert.RegionId, client.Catalog.GetRegion(expert.RegionId).Key, expert.Offset, buffer.Memory[..(int)expert.Length]), cancellationToken);
                    var micros = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
                    if (status != ReadStatus.Ok)
                        Interlocked.Increment(ref counters.Errors);
                    else if (Phase >= 0)
                        _latencies[Phase].Add(micros);
                    await Task.Delay(1, cancellationToken);
                }
            }
            catch (OperationCanceledException)
            {
                // Stopping.
            }
        }

        public (double P50, double P99) Percentiles(int phase)
        {
            var sorted = _latencies[phase].Order().ToArray();
            return sorted.Length == 0 ? (double.NaN, double.NaN) : (sorted[sorted.Length / 2], sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))]);
        }
    }

    /// <summary>Raw wire frames for the misbehaving client.</summary>
    private static class Frames
    {
        /// <summary>Hello, Authenticate with <paramref name="token"/>, then <paramref name="requests"/> control frames of an unknown type.</summary>
        public static byte[] Flood(string token, int requests)
        {
            var auth = ControlMessage.Create(PoolMessageTypes.Authenticate, new AuthenticateRequest(token)).Body.ToArray();
            var frames = new byte[32 + 16 + auth.Length + (requests * 17)];
            BitConverter.TryWriteBytes(frames.AsSpan(0), 16u);
            frames[4] = 1;
            BitConverter.TryWriteBytes(frames.AsSpan(16), 0x52424146u);
            BitConverter.TryWriteBytes(frames.AsSpan(20), (ushort)1);
            BitConverter.TryWriteBytes(frames.AsSpan(32), (uint)auth.Length);
            frames[36] = 5;
            BitConverter.TryWriteBytes(frames.AsSpan(38), PoolMessageTypes.Authenticate);
            BitConverter.TryWriteBytes(frames.AsSpan(40), 1UL);
            auth.CopyTo(frames.AsSpan(48));
            for (var i = 0; i < requests; i++)
            {
                var at = 48 + auth.Length + (i * 17);
                BitConverter.TryWriteBytes(frames.AsSpan(at), 1u);
                frames[at + 4] = 5;
                BitConverter.TryWriteBytes(frames.AsSpan(at + 6), (ushort)177);
                BitConverter.TryWriteBytes(frames.AsSpan(at + 8), (ulong)i + 2);
                frames[at + 16] = 0xC0;
            }
            return frames;
        }

        /// <summary>Hello, then a control header that announces 1 MiB and only 100 bytes of it.</summary>
        public static byte[] Partial()
        {
            var frames = Flood("soak:secret", 0)[..32].Concat(new byte[16 + 100]).ToArray();
            BitConverter.TryWriteBytes(frames.AsSpan(32), 1u << 20);
            frames[36] = 5;
            BitConverter.TryWriteBytes(frames.AsSpan(38), PoolMessageTypes.Authenticate);
            return frames;
        }
    }
}
