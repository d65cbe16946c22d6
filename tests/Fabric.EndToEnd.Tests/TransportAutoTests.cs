using Fabric.Model;
using Fabric.Transport.Rdma;

namespace Fabric.EndToEnd.Tests;

/// <summary><c>fabric-pool serve --transport auto</c>: picks rdma where a device is usable, tcp otherwise, and says which.</summary>
public sealed class TransportAutoTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "fabric-e2e-auto-" + Guid.NewGuid().ToString("N")[..12]);

    public TransportAutoTests() => ModelGenerator.Write(_dir, ModelPresets.Tiny, seed: 5);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task PoolServe_TransportAuto_ServesTheProbedTransport_AndSaysWhy()
    {
        var probe = RdmaDevices.Probe();
        var expected = probe.IsUsable ? "rdma" : "tcp";
        await using var pool = await PoolProcess.StartAsync($"serve --model {_dir} --listen tcp://127.0.0.1:0 --transport auto", endpoints: 1);

        Assert.StartsWith(expected + "://127.0.0.1:", Assert.Single(pool.Endpoints), StringComparison.Ordinal);
        Assert.Contains($"fabric-pool: transport: {expected}, chosen automatically because {probe.Reason}", pool.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, await pool.TerminateAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task PoolServe_UnknownTransport_IsRefused()
    {
        var (code, stdout, stderr) = await PoolProcess.RunAsync($"serve --model {_dir} --listen tcp://127.0.0.1:0 --transport carrier-pigeon");
        Assert.NotEqual(0, code);
        Assert.DoesNotContain("listening", stdout, StringComparison.Ordinal);
        Assert.Contains("carrier-pigeon", stderr, StringComparison.Ordinal);
    }
}
