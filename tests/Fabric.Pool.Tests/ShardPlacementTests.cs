using System.Text;
using Fabric.Common;
using Fabric.Pool.Protocol.Discovery;

namespace Fabric.Pool.Tests;

public sealed class ShardPlacementTests
{
    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 2)]
    [InlineData(4, 4)]
    public void EveryExpert_LivesOnExactlyRConsecutiveShards_AndEveryShardGetsAFairShare(int shards, int replicas)
    {
        var perShard = new int[shards];
        for (var layer = 0; layer < 8; layer++)
        {
            for (var expert = 0; expert < 64; expert++)
            {
                var holders = Enumerable.Range(0, shards).Where(s => ShardPlacement.Holds(layer, expert, s, shards, replicas)).ToList();
                Assert.Equal(replicas, holders.Count);
                var first = ShardPlacement.FirstShard(layer, expert, shards);
                Assert.Equal(Enumerable.Range(0, replicas).Select(i => (first + i) % shards).Order(), holders);
                foreach (var s in holders)
                    perShard[s]++;
            }
        }
        var fair = 8 * 64 * replicas / (double)shards;
        Assert.All(perShard, n => Assert.InRange(n, fair * 0.8, fair * 1.2));
    }

    [Fact]
    public void Registration_RoundTripsAsSnakeCaseJson_AndGarbageIsOneSentence()
    {
        var registration = new PoolRegistration("p1", "mixtral", "00112233aabbccdd", 1, 3, 2, ["tcp://127.0.0.1:7100", "shm:///dev/shm/b"], "host-a", 4);
        var json = registration.ToJson();
        Assert.Contains("\"pool_id\":\"p1\"", Encoding.UTF8.GetString(json), StringComparison.Ordinal);
        var back = PoolRegistration.FromJson(json, registration.Key);
        Assert.Equal(registration.Endpoints, back.Endpoints);
        Assert.Equal(registration with { Endpoints = back.Endpoints }, back);
        Assert.Equal("/fabric/pools/mixtral/p1", registration.Key);
        Assert.Equal("1/3×2", registration.ShardText);

        var bad = Assert.Throws<FabricException>(() => PoolRegistration.FromJson("{\"pool_id\":\"x\",\"shard\":3,\"shards\":3,\"replicas\":1,\"endpoints\":[]}"u8, "/fabric/pools/m/x"));
        Assert.Equal("The registration at /fabric/pools/m/x is not a pool registration.", bad.Message);
    }

    [Theory]
    [InlineData("etcd://127.0.0.1:2379/mixtral", "http://127.0.0.1:2379/", "mixtral")]
    [InlineData("etcd://[::1]:2380/m", "http://[::1]:2380/", "m")]
    public void DiscoverAddresses_Parse(string text, string endpoint, string model)
    {
        var address = EtcdAddress.ParseDiscover(text);
        Assert.Equal(endpoint, address.Endpoint.ToString());
        Assert.Equal(model, address.Model);
    }

    [Theory]
    [InlineData("etcd://127.0.0.1:2379")]
    [InlineData("etcd://127.0.0.1/m")]
    [InlineData("etcd://127.0.0.1:2379/a/b")]
    [InlineData("http://127.0.0.1:2379/m")]
    public void BadDiscoverAddresses_AreOneSentence(string text) =>
        Assert.StartsWith($"--discover '{text}' is not a discovery address", Assert.Throws<FabricException>(() => EtcdAddress.ParseDiscover(text)).Message, StringComparison.Ordinal);
}
