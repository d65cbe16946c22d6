using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Pool.Server.Bank;
using Fabric.Pool.Server.Serving;
using Fabric.Transport;
using Fabric.Transport.Shm;

namespace Fabric.Bench;

/// <summary>
/// <c>bench pool-clients [--model DIR | --preset small] [--clients 4] [--seconds 3] [--depth 2] [--json PATH]</c>: a bank
/// served over shm and tcp (in this process), read by N concurrent clients fetching random whole experts, beside one
/// client alone on the same transport. Reports aggregate ÷ alone (no collapse) and slowest ÷ fastest (no starvation).
/// </summary>
public sealed class PoolClientsBenchmark : IBenchmark
{
    public string Name => "pool-clients";

    public string Summary => "N clients reading random experts over shm and tcp vs one client alone (aggregate, fairness)";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var settings = new BenchOptions(Name, args, ["--model", "--preset", "--clients", "--seconds", "--depth", "--json"]);
        if (settings.Has("--help"))
        {
            Console.WriteLine("usage: fabric bench pool-clients [--model DIR | --preset tiny|small|medium] [--clients N] [--seconds S] [--depth D] [--json PATH]");
            return 0;
        }
        var clients = settings.Int("--clients", 4);
        var seconds = settings.Positive("--seconds", 3);
        var depth = settings.Int("--depth", 2);
        var directory = ModelCache.Resolve(settings.Text("--model"), settings.Text("--preset") ?? "small");

        var shmPath = $"/dev/shm/fabric-bench-clients-{Environment.ProcessId}";
        using var bank = ExpertBank.Load(Checkpoint.Open(directory), new BankOptions { CreateStore = specs => new ShmRegionStore(shmPath, specs) });
        var handler = new PoolControlHandler(bank.Catalog, tenants: null);
        var options = new FabricServerOptions { ControlHandler = handler, Authorize = handler.Authorize };
        await using var tcp = await FabricServers.StartAsync(FabricEndpoint.Parse("tcp://127.0.0.1:0"), bank.Store, options, cancellationToken);
        await using var shm = await FabricServers.StartAsync(FabricEndpoint.Parse("shm://" + shmPath), bank.Store, options, cancellationToken);

        Console.WriteLine($"model {directory}: {bank.Catalog.Experts.Length} experts of {bank.Catalog.Experts[0].Length / 1e6:F2} MB; {depth} reads in flight per client, {seconds} s per run");
        Console.WriteLine();
        Console.WriteLine($"{"transport",-9} {"1 client GB/s",14} {$"{clients} clients GB/s",16} {"aggregate ÷ 1",14} {"slowest ÷ fastest",18}");
        var results = new List<object>();
        foreach (var server in new[] { shm, tcp })
        {
            var alone = (await MeasureAsync(server.Endpoint.ToString(), 1, depth, seconds, cancellationToken))[0];
            var many = await MeasureAsync(server.Endpoint.ToString(), clients, depth, seconds, cancellationToken);
            var aggregate = many.Sum();
            var fairness = many.Min() / Math.Max(many.Max(), 1e-12);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{server.Endpoint.Scheme,-9} {alone,14:F2} {aggregate,16:F2} {aggregate / alone,13:F2}× {fairness,17:F2}×"));
            results.Add(new { transport = server.Endpoint.Scheme, one_client_gbps = alone, clients, aggregate_gbps = aggregate, per_client_gbps = many, aggregate_ratio = aggregate / alone, slowest_over_fastest = fairness });
        }
        if (settings.Text("--json") is { } json)
            await File.WriteAllTextAsync(json, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        return 0;
    }

    /// <summary>
    /// Runs <paramref name="clients"/> clients, each on a thread of its own with <paramref name="depth"/> reads in
    /// flight, over one shared window of <paramref name="seconds"/>; returns each client's GB/s in that window.
    /// </summary>
    private static async Task<double[]> MeasureAsync(string endpoint, int clients, int depth, double seconds, CancellationToken cancellationToken)
    {
        var connections = new PoolConnection[clients];
        for (var c = 0; c < clients; c++)
            connections[c] = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(endpoint), token: null, cancellationToken: cancellationToken);
        try
        {
            var bytes = new long[clients];
            using var ready = new CountdownEvent(clients);
            using var go = new ManualResetEventSlim();
            var stopAt = 0L;
            var threads = connections.Select((client, c) => new Thread(() =>
            {
                var experts = client.Catalog.Experts;
                var blocks = experts.Select(e => client.Index.TryGetExpert(e.Layer, e.Expert, out var b) ? b : throw new FabricException($"The pool lists expert {e.Layer}/{e.Expert} but cannot locate it.")).ToArray();
                var buffers = Enumerable.Range(0, depth).Select(_ => new NativeBuffer(experts.Max(e => e.Length))).ToArray();
                var pending = new Task<ReadStatus>[depth];
                var picks = new int[depth];
                var random = new Random(c);
                ready.Signal();
                go.Wait(cancellationToken);
                while (Stopwatch.GetTimestamp() < Volatile.Read(ref stopAt))
                {
                    for (var d = 0; d < depth; d++)
                    {
                        picks[d] = random.Next(experts.Length);
                        pending[d] = client.Transport.ReadAsync(blocks[picks[d]].Request(buffers[d].Memory[..(int)blocks[picks[d]].Length]), cancellationToken).AsTask();
                    }
                    Task.WaitAll(pending, cancellationToken);
                    for (var d = 0; d < depth; d++)
                    {
                        if (pending[d].Result != ReadStatus.Ok)
                            throw new FabricException($"A benchmark read failed: {pending[d].Result.Describe()}.");
                        bytes[c] += experts[picks[d]].Length;
                    }
                }
                foreach (var b in buffers)
                    ((IDisposable)b).Dispose();
            }) { IsBackground = true, Name = $"bench client {c}" }).ToArray();
            foreach (var t in threads)
                t.Start();
            ready.Wait(cancellationToken);
            var started = Stopwatch.GetTimestamp();
            Volatile.Write(ref stopAt, started + (long)(seconds * Stopwatch.Frequency));
            go.Set();
            foreach (var t in threads)
                t.Join();
            var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
            return bytes.Select(b => b / 1e9 / elapsed).ToArray();
        }
        finally
        {
            foreach (var c in connections)
                await c.DisposeAsync();
        }
    }
}
