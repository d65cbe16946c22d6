using System.Net;
using System.Net.Sockets;
using Fabric.Common.Native;
using Fabric.Pool.Protocol;
using Fabric.Transport;

namespace Fabric.EndToEnd.Tests;

/// <summary>
/// What <c>serve --shm PATH</c> may do to the files at PATH and PATH.ctl, with real pool processes: it never touches a
/// file that is not a bank nor a live pool's bank, a failed start changes nothing, and on exit it removes only its own.
/// </summary>
public sealed class PoolShmPathTests : IClassFixture<PoolModel>
{
    private readonly PoolModel _model;

    public PoolShmPathTests(PoolModel model) => _model = model;

    private string ServeArgs(string shm, string? metrics = null) =>
        $"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --shm {shm} --tokens {_model.TokensFile}" + (metrics is null ? "" : $" --metrics {metrics}");

    [Fact]
    public async Task ServeShm_OnAFileThatIsNotABank_IsRefused_AndTheFileIsUntouched()
    {
        var shm = _model.NewShmPath();
        var bytes = new byte[10_000];
        Random.Shared.NextBytes(bytes);
        File.WriteAllBytes(shm, bytes);
        var checkpoint = Path.Combine(_model.Directory, "copy-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(checkpoint);
        var weights = Path.Combine(checkpoint, "model.safetensors");
        File.Copy(Path.Combine(_model.ModelDirectory, "model.safetensors"), weights);
        var original = File.ReadAllBytes(weights);

        foreach (var (path, content) in new[] { (shm, bytes), (weights, original) })
        {
            var before = Identity(path);
            ChildProgram.AssertRefused(await PoolProcess.RunAsync(ServeArgs(path)),
                $"fabric-pool: {path} exists and is not a Fabric shm bank; remove it or choose another path.");
            Assert.Equal(before, Identity(path));
            Assert.Equal(content, File.ReadAllBytes(path));
            Assert.False(File.Exists(path + ".ctl"));
        }
    }

    [Fact]
    public async Task ServeShm_OnALivePoolsPath_IsRefused_AndTheFirstKeepsServing()
    {
        var shm = _model.NewShmPath();
        var first = await PoolProcess.StartAsync(ServeArgs(shm), endpoints: 2);
        await using var _ = first;
        var file = Identity(shm);
        var socket = Identity(shm + ".ctl");

        ChildProgram.AssertRefused(await PoolProcess.RunAsync(ServeArgs(shm)),
            $"fabric-pool: {shm} is in use by a running pool; stop it or choose another path.");

        Assert.Equal(file, Identity(shm));
        Assert.Equal(socket, Identity(shm + ".ctl"));
        Assert.Equal([shm, shm + ".ctl"], Leftovers(shm));
        Assert.False(first.HasExited);
        await using (var client = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(first.Endpoint("shm")), "alice:wonderland"))
            Assert.NotEmpty(client.Catalog.Experts);
        Assert.Equal(0, await first.TerminateAsync(TimeSpan.FromSeconds(30)));
        Assert.Empty(Leftovers(shm));
    }

    [Fact]
    public async Task ServeShm_FailedStart_ChangesNothingOnDisk()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var metrics = $"http://127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port}";

        // Into an empty place: nothing is created.
        var fresh = _model.NewShmPath();
        var run = await PoolProcess.RunAsync(ServeArgs(fresh, metrics));
        Assert.Empty(Leftovers(fresh));
        Assert.Equal(2, run.Code);
        Assert.Contains("--metrics", run.Stderr, StringComparison.Ordinal);

        // Over a stale bank: the bank and its socket stay as they were.
        var stale = _model.NewShmPath();
        await (await PoolProcess.StartAsync(ServeArgs(stale), endpoints: 2)).DisposeAsync();
        var file = Identity(stale);
        var content = File.ReadAllBytes(stale);
        var socket = Identity(stale + ".ctl");
        run = await PoolProcess.RunAsync(ServeArgs(stale, metrics));
        Assert.Equal(2, run.Code);
        Assert.Equal(file, Identity(stale));
        Assert.Equal(content, File.ReadAllBytes(stale));
        Assert.Equal(socket, Identity(stale + ".ctl"));
        Assert.Equal([stale, stale + ".ctl"], Leftovers(stale));

        // Over a live pool: it keeps its file and keeps serving.
        var live = _model.NewShmPath();
        await using var pool = await PoolProcess.StartAsync(ServeArgs(live), endpoints: 2);
        file = Identity(live);
        run = await PoolProcess.RunAsync(ServeArgs(live, metrics));
        Assert.Equal(2, run.Code);
        Assert.Equal(file, Identity(live));
        await using var client = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(pool.Endpoint("shm")), "alice:wonderland");
        Assert.NotEmpty(client.Catalog.Experts);
    }

    [Fact]
    public async Task ServeShm_StaleBankOfADeadPool_IsReplaced()
    {
        var shm = _model.NewShmPath();
        await (await PoolProcess.StartAsync(ServeArgs(shm), endpoints: 2)).DisposeAsync();
        var stale = Identity(shm);
        Assert.Equal([shm, shm + ".ctl"], Leftovers(shm));

        var second = await PoolProcess.StartAsync(ServeArgs(shm), endpoints: 2);
        await using var _ = second;
        Assert.NotEqual(stale, Identity(shm));
        await using (var client = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(second.Endpoint("shm")), "alice:wonderland"))
            Assert.NotEmpty(client.Catalog.Experts);
        Assert.Equal(0, await second.TerminateAsync(TimeSpan.FromSeconds(30)));
        Assert.Empty(Leftovers(shm));
    }

    [Fact]
    public async Task ServeShm_OnExit_LeavesFilesThatAreNoLongerItsOwn()
    {
        var shm = _model.NewShmPath();
        var pool = await PoolProcess.StartAsync(ServeArgs(shm), endpoints: 2);
        await using var _ = pool;
        File.Move(shm, shm + ".moved");
        File.WriteAllText(shm, "someone else's file");
        File.Move(shm + ".ctl", shm + ".ctl.moved");
        File.WriteAllText(shm + ".ctl", "someone else's too");

        Assert.Equal(0, await pool.TerminateAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal("someone else's file", File.ReadAllText(shm));
        Assert.Equal("someone else's too", File.ReadAllText(shm + ".ctl"));
    }

    private static FileIdentity Identity(string path) =>
        FileIdentity.TryOfPath(path, out var identity) ? identity : throw new FileNotFoundException($"{path} is gone.");

    /// <summary>Everything in /dev/shm whose name starts with PATH's (the bank, its socket, any temporary file), sorted.</summary>
    private static string[] Leftovers(string path) =>
        Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + "*").Order(StringComparer.Ordinal).ToArray();
}
