using System.Buffers.Binary;
using System.IO.Hashing;

namespace Fabric.Pool.Protocol.Discovery;

/// <summary>
/// Which pools hold which routed experts: expert e of layer l belongs to R consecutive shards (mod N) starting at
/// xxHash32(l, e) mod N. Every pool holds every dense tensor. Pools and engines compute the same answer from
/// (l, e, N, R) alone.
/// </summary>
public static class ShardPlacement
{
    /// <summary>The first shard of expert (<paramref name="layer"/>, <paramref name="expert"/>) among <paramref name="shards"/>.</summary>
    public static int FirstShard(int layer, int expert, int shards)
    {
        Span<byte> key = stackalloc byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(key, layer);
        BinaryPrimitives.WriteInt32LittleEndian(key[4..], expert);
        return (int)(XxHash32.HashToUInt32(key) % (uint)shards);
    }

    /// <summary>Whether shard <paramref name="shard"/> of <paramref name="shards"/> (with <paramref name="replicas"/> copies of each expert) holds the expert.</summary>
    public static bool Holds(int layer, int expert, int shard, int shards, int replicas)
    {
        if (shards <= 1 || replicas >= shards)
            return true;
        var first = FirstShard(layer, expert, shards);
        return ((shard - first + shards) % shards) < replicas;
    }
}
