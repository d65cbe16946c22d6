using Etcdserverpb;
using Fabric.Common;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Fabric.Pool.Protocol.Discovery;

/// <summary>One registered pool as <c>pool ls</c> shows it: the registration and the seconds its lease has left (-1: expired).</summary>
public sealed record ListedPool(PoolRegistration Registration, long LeaseSecondsLeft);

/// <summary>Reads every pool registration in etcd once (no watch), with each lease's remaining time.</summary>
public static class PoolListing
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Every registration under <see cref="PoolRegistration.Root"/>, by model then pool id. etcd not answering is one sentence.</summary>
    public static async Task<IReadOnlyList<ListedPool>> ListAsync(EtcdAddress etcd, CancellationToken cancellationToken = default)
    {
        using var channel = GrpcChannel.ForAddress(etcd.Endpoint);
        try
        {
            var root = PoolRegistration.Root;
            var reply = await new KV.KVClient(channel).RangeAsync(new RangeRequest
            {
                Key = ByteString.CopyFromUtf8(root),
                RangeEnd = ByteString.CopyFromUtf8(root[..^1] + (char)(root[^1] + 1)),
            }, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
            var leases = new Lease.LeaseClient(channel);
            var pools = new List<ListedPool>();
            foreach (var kv in reply.Kvs)
            {
                PoolRegistration registration;
                try
                {
                    registration = PoolRegistration.FromJson(kv.Value.Span, kv.Key.ToStringUtf8());
                }
                catch (FabricException)
                {
                    continue;
                }
                var ttl = kv.Lease == 0 ? -1 : (await leases.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = kv.Lease },
                    deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken)).TTL;
                pools.Add(new ListedPool(registration, ttl));
            }
            return [.. pools.OrderBy(p => p.Registration.Model, StringComparer.Ordinal).ThenBy(p => p.Registration.PoolId, StringComparer.Ordinal)];
        }
        catch (RpcException e)
        {
            throw new FabricException($"etcd at {etcd.Endpoint.Authority} does not answer; start it or fix --etcd.", e);
        }
    }
}
