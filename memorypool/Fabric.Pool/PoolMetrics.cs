using Fabric.Pool.Server.Bank;
using Fabric.Pool.Server.Serving;
using Fabric.Transport;
using Prometheus;

namespace Fabric.Pool;

/// <summary>
/// The pool's Prometheus metrics. Reads are counted on the hot path in <see cref="TenantCounters"/> (no allocation);
/// the Prometheus counters catch up just before each scrape. Shm reads are loads the server never sees, so per-tenant
/// byte counts cover tcp (and any transport whose server serves the read).
/// </summary>
internal sealed class PoolMetrics
{
    private static readonly string[] TenantLabels = ["tenant", "transport"];

    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly TenantCounters _counters = new();
    private readonly Counter _bytes;
    private readonly Counter _reads;
    private readonly Counter _errors;
    private readonly Counter _authFailures;
    private readonly Gauge _sessions;
    private readonly List<IFabricServer> _servers = [];

    public PoolMetrics(ExpertBank bank, PoolControlHandler handler)
    {
        var factory = Metrics.WithCustomRegistry(_registry);
        _bytes = factory.CreateCounter("fabric_pool_read_bytes_total", "Bytes served by reads, per tenant and transport.", TenantLabels);
        _reads = factory.CreateCounter("fabric_pool_reads_total", "Reads served, per tenant and transport.", TenantLabels);
        _errors = factory.CreateCounter("fabric_pool_read_errors_total", "Reads refused or failed, per tenant and transport.", TenantLabels);
        _authFailures = factory.CreateCounter("fabric_pool_auth_failures_total", "Authentication attempts refused.");
        _sessions = factory.CreateGauge("fabric_pool_sessions", "Sessions connected, per transport.", "transport");
        factory.CreateGauge("fabric_pool_resident_bytes", "Bytes of the bank's regions resident in memory.").Set(bank.ResidentBytes);
        factory.CreateGauge("fabric_pool_experts", "Routed experts in the bank.").Set(bank.Catalog.Experts.Length);
        factory.CreateGauge("fabric_pool_load_seconds", "Seconds the bank took to load (read + hash).").Set(bank.LoadStats.TotalSeconds);
        factory.CreateGauge("fabric_pool_load_gigabytes_per_second", "Bank load bandwidth in GB/s.").Set(bank.LoadStats.GigabytesPerSecond);

        _registry.AddBeforeCollectCallback(() =>
        {
            foreach (var (tenant, transport, bytes, reads, errors) in _counters.Snapshot())
            {
                _bytes.WithLabels(tenant, transport).IncTo(bytes);
                _reads.WithLabels(tenant, transport).IncTo(reads);
                _errors.WithLabels(tenant, transport).IncTo(errors);
            }
            _authFailures.IncTo(handler.AuthFailures);
            lock (_servers)
            {
                foreach (var group in _servers.GroupBy(s => s.Endpoint.Scheme))
                    _sessions.WithLabels(group.Key).Set(group.Sum(s => s.SessionCount));
            }
        });
    }

    public TenantCounters Counters => _counters;

    /// <summary>Exports <c>fabric_pool_shard{shard, shards, replicas} 1</c>: which share of the routed experts this pool holds (0/1 for all).</summary>
    public void DescribeShard(int shard, int shards, int replicas) =>
        Metrics.WithCustomRegistry(_registry).CreateGauge("fabric_pool_shard", "The shard of the routed experts this pool holds.", "shard", "shards", "replicas")
            .WithLabels(shard.ToString(System.Globalization.CultureInfo.InvariantCulture), shards.ToString(System.Globalization.CultureInfo.InvariantCulture),
                replicas.ToString(System.Globalization.CultureInfo.InvariantCulture)).Set(1);

    public void Track(IFabricServer server)
    {
        lock (_servers)
            _servers.Add(server);
    }

    /// <summary>Writes the Prometheus text exposition to <paramref name="destination"/>.</summary>
    public Task WriteAsync(Stream destination, CancellationToken cancellationToken) =>
        _registry.CollectAndExportAsTextAsync(destination, cancellationToken);
}
