using System.CommandLine;
using System.Globalization;
using Fabric.Common;
using Fabric.Pool.Protocol;
using Fabric.Pool.Protocol.Discovery;
using Fabric.Pool.Server.Discovery;
using Fabric.Transport;

namespace Fabric.Pool;

/// <summary>
/// <c>serve</c>'s etcd options: <c>--etcd URL --pool-id ID [--shard I/N] [--replicas R] [--model-name NAME]
/// [--lease-ttl SECONDS]</c>. Parsed and checked before anything is loaded; registers once the servers listen.
/// </summary>
internal sealed record ServeDiscovery(EtcdAddress? Etcd, string? PoolId, int Shard, int Shards, int Replicas, string? ModelName, TimeSpan LeaseTtl)
{
    public static readonly Option<string?> EtcdOption = new("--etcd") { Description = "Register this pool in etcd at http://HOST:PORT so that engines find it (engine --discover etcd://HOST:PORT/MODEL)." };
    public static readonly Option<string?> PoolIdOption = new("--pool-id") { Description = "This pool's name in etcd (with --etcd); unique among the model's pools." };
    public static readonly Option<string?> ShardOption = new("--shard") { Description = "Hold only shard I of N of the routed experts (I/N, 0-based); dense weights are held by every pool." };
    public static readonly Option<int> ReplicasOption = new("--replicas") { Description = "Each expert lives on R consecutive shards, so R - 1 pools may fail.", DefaultValueFactory = _ => 1 };
    public static readonly Option<string?> ModelNameOption = new("--model-name") { Description = "The model name pools register under (default: the checkpoint directory's or image file's name)." };
    public static readonly Option<double> LeaseTtlOption = new("--lease-ttl") { Description = "Seconds the etcd registration outlives a pool that stopped answering.", DefaultValueFactory = _ => 5 };

    public static IEnumerable<Option> Options => [EtcdOption, PoolIdOption, ShardOption, ReplicasOption, ModelNameOption, LeaseTtlOption];

    /// <summary>Reads and checks the options; one sentence when they do not fit together.</summary>
    public static ServeDiscovery Parse(ParseResult result)
    {
        var etcdText = result.GetValue(EtcdOption);
        var poolId = result.GetValue(PoolIdOption);
        var shardText = result.GetValue(ShardOption);
        var replicas = result.GetValue(ReplicasOption);
        var ttl = result.GetValue(LeaseTtlOption);
        if (etcdText is null && (poolId is not null || shardText is not null || replicas != 1))
            throw new FabricException("--pool-id, --shard and --replicas go with --etcd URL: a shard is only found through etcd.");
        var etcd = etcdText is null ? null : EtcdAddress.ParseServer(etcdText);
        if (etcd is not null && string.IsNullOrWhiteSpace(poolId))
            throw new FabricException("--etcd needs --pool-id ID: the name this pool registers under.");
        if (poolId is not null && (poolId.Contains('/', StringComparison.Ordinal) || poolId.Any(char.IsWhiteSpace)))
            throw new FabricException($"--pool-id '{poolId}' may hold neither '/' nor spaces.");
        var (shard, shards) = (0, 1);
        if (shardText is not null)
        {
            var parts = shardText.Split('/');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out shard)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out shards) || shards < 1 || shard >= shards)
                throw new FabricException($"--shard '{shardText}' is not a shard; give I/N with 0 <= I < N, such as 0/3.");
        }
        if (replicas < 1 || replicas > shards)
            throw new FabricException($"--replicas {replicas}: give 1 to {shards} (the number of shards).");
        if (!(ttl >= 1 && ttl <= 3600))
            throw new FabricException($"--lease-ttl {ttl.ToString(CultureInfo.InvariantCulture)}: give 1 to 3600 seconds.");
        return new ServeDiscovery(etcd, poolId, shard, shards, replicas, result.GetValue(ModelNameOption), TimeSpan.FromSeconds(ttl));
    }

    /// <summary>Which experts this pool loads; null for all of them.</summary>
    public Func<int, int, bool>? HoldsExpert => Shards > 1 && Replicas < Shards
        ? (layer, expert) => ShardPlacement.Holds(layer, expert, Shard, Shards, Replicas)
        : null;

    /// <summary>Registers the pool (when --etcd was given) with every endpoint it serves; null otherwise.</summary>
    public async Task<PoolRegistrar?> RegisterAsync(string modelName, ulong fingerprint, IReadOnlyList<IFabricServer> servers, CancellationToken cancellationToken)
    {
        if (Etcd is null)
            return null;
        var registration = new PoolRegistration(PoolId!, ModelName ?? modelName, ModelFingerprint.Format(fingerprint), Shard, Shards, Replicas,
            [.. servers.Select(s => s.Endpoint.ToString())], Environment.MachineName, 0);
        var registrar = await PoolRegistrar.StartAsync(Etcd, registration, LeaseTtl, () => servers.Sum(s => s.SessionCount),
            message => Console.Error.WriteLine($"fabric-pool: {message}"), cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"registered {registration.PoolId} for model {registration.Model} (shard {registration.ShardText}, fingerprint {registration.Fingerprint}) at {Etcd}");
        return registrar;
    }
}
