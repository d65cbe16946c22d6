using System.Text;
using System.Text.Json;
using Fabric.Common;

namespace Fabric.Pool.Protocol.Discovery;

/// <summary>
/// What a pool registers in etcd, under <c>/fabric/pools/MODEL/POOL_ID</c> and a lease: the model it serves (name
/// and <see cref="ModelFingerprint"/>), its shard of the routed experts, every endpoint it listens on, the host it
/// runs on (engines on the same host prefer its shm endpoint) and its load (sessions open), refreshed while it runs.
/// Stored as JSON with snake_case names.
/// </summary>
public sealed record PoolRegistration(string PoolId, string Model, string Fingerprint, int Shard, int Shards, int Replicas, string[] Endpoints, string Host, int Load)
{
    /// <summary>The key prefix of every registration.</summary>
    public const string Root = "/fabric/pools/";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>The prefix of <paramref name="model"/>'s registrations.</summary>
    public static string ModelPrefix(string model) => $"{Root}{model}/";

    /// <summary>This registration's key.</summary>
    public string Key => ModelPrefix(Model) + PoolId;

    /// <summary>Whether this pool holds expert (<paramref name="layer"/>, <paramref name="expert"/>).</summary>
    public bool Holds(int layer, int expert) => ShardPlacement.Holds(layer, expert, Shard, Shards, Replicas);

    /// <summary>The shard as people write it: "i/N" (and "×R" with replicas).</summary>
    public string ShardText => Replicas > 1 ? $"{Shard}/{Shards}×{Replicas}" : $"{Shard}/{Shards}";

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    /// <summary>Parses a stored registration; a value that is not one throws <see cref="FabricException"/>.</summary>
    public static PoolRegistration FromJson(ReadOnlySpan<byte> json, string key)
    {
        try
        {
            var parsed = JsonSerializer.Deserialize<PoolRegistration>(json, Json);
            if (parsed is null || parsed.Endpoints is null || parsed.Shards < 1 || parsed.Shard < 0 || parsed.Shard >= parsed.Shards || parsed.Replicas < 1)
                throw new FabricException($"The registration at {key} is not a pool registration.");
            return parsed;
        }
        catch (JsonException e)
        {
            throw new FabricException($"The registration at {key} is not a pool registration ({e.Message}): {Encoding.UTF8.GetString(json)}", e);
        }
    }
}
