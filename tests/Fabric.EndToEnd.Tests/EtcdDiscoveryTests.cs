using System.Diagnostics;
using System.IO.Hashing;
using System.Text;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Pool.Protocol.Discovery;

namespace Fabric.EndToEnd.Tests;

/// <summary>Pools that register in a real etcd, sharded with replicas, found by real engines and by the protocol's reader.</summary>
public sealed class EtcdDiscoveryTests : IClassFixture<PoolModel>
{
    private const string Prompt = "--prompt-ids 5,9,13 --max-new-tokens 40 --slots 4";
    private readonly PoolModel _model;

    public EtcdDiscoveryTests(PoolModel model) => _model = model;

    private string ShardArgs(EtcdServer etcd, int shard, string extra = "") =>
        $"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --etcd {etcd.Url} --pool-id p{shard} --shard {shard}/3 --replicas 2 --lease-ttl 3 {extra}";

    [EtcdFact]
    public async Task ThreeShardedPools_GiveTheTokensOfOneWholePool_AlsoWhenOneIsKilledMidGeneration()
    {
        using var etcd = await EtcdServer.StartAsync();
        string expected;
        await using (var whole = await PoolProcess.StartAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0", endpoints: 1))
            expected = TokenLine(await ChildProgram.RunAsync("fabric-engine", $"generate --pool {whole.Endpoint("tcp")} {Prompt}"));

        var pools = new List<PoolProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
                pools.Add(await PoolProcess.StartAsync(ShardArgs(etcd, i, "--metrics http://127.0.0.1:0"), endpoints: 1, metrics: true));
            Assert.Contains("fabric_pool_shard{shard=\"1\",shards=\"3\",replicas=\"2\"} 1", await new HttpClient().GetStringAsync(pools[1].MetricsUrl), StringComparison.Ordinal);
            var ls = await PoolProcess.RunAsync($"ls --etcd {etcd.Url}");
            Assert.True(ls.Code == 0, ls.Stderr);
            Assert.StartsWith("model model: 3 pool(s)", ls.Stdout, StringComparison.Ordinal);
            Assert.Matches($@"\n  p1 +1/3×2 +[0-9a-f]{{16}} +\d+  ok \(lease \d s\) +{pools[1].Endpoint("tcp")}", ls.Stdout);

            Assert.Equal(expected, TokenLine(await ChildProgram.RunAsync("fabric-engine", $"generate --discover {etcd.Discover("model")} {Prompt}")));

            // kill -9 the pool the engine reads first, once the first token is out: the replicas serve the rest.
            var victim = pools[0];
            pools.RemoveAt(0);
            var (code, tokens, stderr) = await RunKillingAsync($"generate --discover {etcd.Discover("model")} {Prompt}", victim);
            Assert.True(code == 0, stderr);
            Assert.Equal(expected, tokens);
        }
        finally
        {
            foreach (var pool in pools)
                await pool.DisposeAsync();
        }
    }

    [EtcdFact]
    public async Task KilledPool_IsPassedOver_RestartedPool_IsUsedAgain_AndLosingEtcd_IsSaidOnce()
    {
        using var etcd = await EtcdServer.StartAsync();
        var pools = new PoolProcess?[3];
        var notices = new List<string>();
        try
        {
            for (var i = 0; i < 3; i++)
                pools[i] = await PoolProcess.StartAsync(ShardArgs(etcd, i, "--metrics http://127.0.0.1:0"), endpoints: 1, metrics: true);
            await using var directory = await PoolDirectory.OpenAsync(EtcdAddress.ParseDiscover(etcd.Discover("model")), n => { lock (notices) notices.Add(n); });
            await using var reader = await PoolReader.ConnectAsync(directory, token: null, holderWait: TimeSpan.FromSeconds(20));
            var expected = await ReadAllAsync(reader);

            await pools[0]!.DisposeAsync();
            pools[0] = null;
            Assert.Equal(expected, await ReadAllAsync(reader));

            // Its lease runs out (a second live pool under its id would be refused); the restarted pool registers with a
            // new port and no sessions, so it is the least loaded holder.
            await WaitUntilAsync(() => directory.Pools.Count == 2, "the killed pool's lease to expire");
            pools[0] = await PoolProcess.StartAsync(ShardArgs(etcd, 0, "--metrics http://127.0.0.1:0"), endpoints: 1, metrics: true);
            var restarted = pools[0]!.Endpoint("tcp");
            await WaitUntilAsync(() => directory.Pools.Any(p => p.ToString() == restarted), "the restarted pool to be listed");
            Assert.Equal(expected, await ReadAllAsync(reader));
            Assert.Matches(@"fabric_pool_read_bytes_total\{tenant=""default"",transport=""tcp""\} [1-9]", await new HttpClient().GetStringAsync(pools[0]!.MetricsUrl));

            etcd.Stop();
            await WaitUntilAsync(() => Notices().Any(n => n.Contains("stopped answering", StringComparison.Ordinal)), "the engine to notice etcd is gone");
            Assert.Equal(expected, await ReadAllAsync(reader));
            await Task.Delay(TimeSpan.FromSeconds(2.5));
            Assert.Equal(expected, await ReadAllAsync(reader));
            Assert.Equal($"etcd at 127.0.0.1:{etcd.Port} stopped answering; reading on from the 3 pool(s) already known.",
                Assert.Single(Notices(), n => n.Contains("etcd", StringComparison.Ordinal)));
            Assert.Equal(0, reader.CorruptBlocks);
        }
        finally
        {
            foreach (var pool in pools)
            {
                if (pool is not null)
                    await pool.DisposeAsync();
            }
        }

        List<string> Notices()
        {
            lock (notices)
                return [.. notices];
        }
    }

    [EtcdFact]
    public async Task PoolWithAnotherFingerprint_IsRefused_AndAnExpertNoPoolHolds_IsNamed()
    {
        using var etcd = await EtcdServer.StartAsync();
        var other = Path.Combine(_model.Directory, "other", "model");
        ModelGenerator.Write(other, ModelPresets.Tiny, seed: 5, routerSkew: 1);
        var notices = new List<string>();
        await using var good = await PoolProcess.StartAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --etcd {etcd.Url} --pool-id good", endpoints: 1);
        await using (var directory = await PoolDirectory.OpenAsync(EtcdAddress.ParseDiscover(etcd.Discover("model")), n => { lock (notices) notices.Add(n); }))
        {
            await using var reader = await PoolReader.ConnectAsync(directory, token: null);
            await using var stranger = await PoolProcess.StartAsync($"serve --model {other} --listen tcp://127.0.0.1:0 --etcd {etcd.Url} --pool-id stranger", endpoints: 1);
            var theirs = ModelFingerprint.Format(ModelFingerprint.Of(Checkpoint.Open(other)));
            var ours = ModelFingerprint.Format(ModelFingerprint.Of(Checkpoint.Open(_model.ModelDirectory)));
            await WaitUntilAsync(() => { lock (notices) return notices.Count > 0; }, "the stranger to be refused");
            lock (notices)
                Assert.Equal($"pool stranger registered model model with fingerprint {theirs}, but the pools in use serve fingerprint {ours}; it is not used.", Assert.Single(notices));
            Assert.Equal([good.Endpoint("tcp")], directory.Pools.Select(p => p.ToString()));
            await ReadAllAsync(reader);
            Assert.Equal(0, reader.CorruptBlocks);
        }

        // One shard of three without replicas holds about a third of the experts; the reader names one it lacks.
        await using var shard = await PoolProcess.StartAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --etcd {etcd.Url} --pool-id s0 --shard 0/3 --model-name partial", endpoints: 1);
        await using var partial = await PoolDirectory.OpenAsync(EtcdAddress.ParseDiscover(etcd.Discover("partial")), _ => { });
        var refused = await Assert.ThrowsAsync<FabricException>(() => PoolReader.ConnectAsync(partial, token: null, holderWait: TimeSpan.FromSeconds(1)));
        Assert.Matches($@"^No pool registered at etcd://127\.0\.0\.1:{etcd.Port}/partial holds expert \d+/\d+ \(waited 1 s\)\.$", refused.Message);
    }

    [Fact]
    public async Task BadDiscoveryOptions_AreOneSentence_ExitTwo()
    {
        ChildProgram.AssertRefused(await PoolProcess.RunAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --shard 1/3"),
            "fabric-pool: --pool-id, --shard and --replicas go with --etcd URL: a shard is only found through etcd.");
        ChildProgram.AssertRefused(await PoolProcess.RunAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --etcd http://127.0.0.1:1 --pool-id a --shard 3/3"),
            "fabric-pool: --shard '3/3' is not a shard; give I/N with 0 <= I < N, such as 0/3.");
        ChildProgram.AssertRefused(await PoolProcess.RunAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --etcd 127.0.0.1:2379 --pool-id a"),
            "fabric-pool: --etcd '127.0.0.1:2379' is not an etcd address; expected http://HOST:PORT, such as http://127.0.0.1:2379.");
        ChildProgram.AssertRefused(await PoolProcess.RunAsync("ls --etcd http://127.0.0.1:1"),
            "fabric-pool: etcd at 127.0.0.1:1 does not answer; start it or fix --etcd.");
        ChildProgram.AssertRefused(await ChildProgram.RunAsync("fabric-engine", "generate --discover http://127.0.0.1:2379/model --prompt-ids 1 --max-new-tokens 1"),
            "fabric-engine: --discover 'http://127.0.0.1:2379/model' is not a discovery address; expected etcd://HOST:PORT/MODEL, such as etcd://127.0.0.1:2379/mixtral.");
    }

    /// <summary>Runs fabric-engine, kill -9s <paramref name="victim"/> once the first token is printed, and returns (exit code, token line, stderr).</summary>
    private static async Task<(int Code, string Tokens, string Stderr)> RunKillingAsync(string arguments, PoolProcess victim)
    {
        var info = new ProcessStartInfo("dotnet", $"\"{Path.Combine(AppContext.BaseDirectory, "fabric-engine.dll")}\" {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = new StringBuilder();
        var buffer = new char[256];
        var killed = false;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        int n;
        while ((n = await process.StandardOutput.ReadAsync(buffer, timeout.Token)) > 0)
        {
            stdout.Append(buffer, 0, n);
            if (!killed && stdout.ToString().Any(char.IsDigit))
            {
                await victim.DisposeAsync();
                killed = true;
            }
        }
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, stdout.ToString().Split('\n')[0].Trim(), await stderr);
    }

    private static string TokenLine((int Code, string Stdout, string Stderr) run)
    {
        Assert.True(run.Code == 0, run.Stderr);
        return run.Stdout.Split('\n')[0].Trim();
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"timed out waiting for {what}");
            await Task.Delay(50);
        }
    }

    /// <summary>Every expert and dense tensor through <paramref name="reader"/>, hashed together.</summary>
    private static async Task<string> ReadAllAsync(PoolReader reader)
    {
        var catalog = reader.Catalog;
        using var buffer = new NativeBuffer(Math.Max(catalog.Experts.Max(e => e.Length), catalog.Dense.Max(d => d.Length)));
        var all = new XxHash128();
        foreach (var expert in catalog.Experts)
        {
            await reader.ReadExpertAsync(expert.Layer, expert.Expert, buffer.Memory);
            all.Append(buffer.Span[..(int)expert.Length]);
        }
        foreach (var dense in catalog.Dense)
        {
            await reader.ReadDenseAsync(dense.Name, buffer.Memory);
            all.Append(buffer.Span[..(int)dense.Length]);
        }
        return Convert.ToHexString(all.GetCurrentHash());
    }
}
