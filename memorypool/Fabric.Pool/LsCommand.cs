using System.CommandLine;
using Fabric.Cli;
using Fabric.Pool.Protocol.Discovery;

namespace Fabric.Pool;

/// <summary><c>ls --etcd URL</c>: the pools registered in etcd, per model: shard, fingerprint, endpoints, load and lease health.</summary>
internal static class LsCommand
{
    public static Command Create()
    {
        var etcd = new Option<string>("--etcd") { Description = "etcd at http://HOST:PORT.", Required = true };
        var command = new Command("ls", "List the pools registered in etcd: per model, each pool's shard, fingerprint, endpoints, load and health.");
        command.Options.Add(etcd);
        command.SetAction((ParseResult r, CancellationToken ct) => ConsoleErrors.RunAsync("fabric-pool", async () =>
        {
            var address = EtcdAddress.ParseServer(r.GetValue(etcd)!);
            var pools = await PoolListing.ListAsync(address, ct).ConfigureAwait(false);
            if (pools.Count == 0)
            {
                Console.WriteLine($"no pools are registered at {address}");
                return 0;
            }
            foreach (var model in pools.GroupBy(p => p.Registration.Model, StringComparer.Ordinal))
            {
                var fingerprints = model.Select(p => p.Registration.Fingerprint).Distinct(StringComparer.Ordinal).Count();
                Console.WriteLine($"model {model.Key}: {model.Count()} pool(s){(fingerprints > 1 ? $", {fingerprints} different fingerprints (engines use one and refuse the others)" : "")}");
                Console.WriteLine($"  {"pool",-12} {"shard",-8} {"fingerprint",-16} {"load",5}  {"health",-14} endpoints");
                foreach (var (p, ttl) in model.Select(p => (p.Registration, p.LeaseSecondsLeft)))
                {
                    var health = ttl > 0 ? $"ok (lease {ttl} s)" : "lease expired";
                    Console.WriteLine($"  {p.PoolId,-12} {p.ShardText,-8} {p.Fingerprint,-16} {p.Load,5}  {health,-14} {string.Join(" ", p.Endpoints)}");
                }
            }
            return 0;
        }));
        return command;
    }
}
