using System.Diagnostics;
using System.IO.Hashing;
using Fabric.Common;
using Fabric.Pool.Protocol;
using Fabric.Transport;

namespace Fabric.EndToEnd.Tests;

/// <summary>
/// Someone shrinks a live pool's shm file: the pool, readers that map it (this process) and an engine process keep
/// working, because the regions live in a sealed memory file; new clients hear one sentence or fail over.
/// </summary>
public sealed class PoolShmTruncationTests : IClassFixture<PoolModel>
{
    private readonly PoolModel _model;

    public PoolShmTruncationTests(PoolModel model) => _model = model;

    [Fact]
    public async Task TruncatedShmFile_UnderLiveReaders_CrashesNothing_AndNewClientsFailOver()
    {
        var shm = _model.NewShmPath();
        await using var pool = await PoolProcess.StartAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --shm {shm} --tokens {_model.TokensFile}", endpoints: 2);
        await using var shmClient = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(pool.Endpoint("shm")), "alice:wonderland");
        await using var tcpClient = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(pool.Endpoint("tcp")), "alice:wonderland");
        await AssertEveryExpertReadsAsync(shmClient);

        // An engine process pages experts over shm (tcp as its second pool) while the file is shrunk under it.
        var engine = StartEngine($"generate --pool {pool.Endpoint("shm")} --pool {pool.Endpoint("tcp")} --token alice:wonderland --prompt-ids 5,9,13 --max-new-tokens 48 --slots 4");
        await Task.Delay(300);
        await using (var file = new FileStream(shm, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
            file.SetLength(0);

        // The mapped reader in this process and the pool's tcp reads of the same bank still see every byte.
        await AssertEveryExpertReadsAsync(shmClient);
        await AssertEveryExpertReadsAsync(tcpClient);
        var (code, stdout, stderr) = await FinishAsync(engine);
        Assert.True(code == 0, stderr);
        Assert.Equal(48, stdout.Split('\n')[0].Trim().Split(',').Length);

        // The memory file itself cannot be shrunk, even by its owner's descriptor.
        var memfd = Directory.GetFiles($"/proc/{pool.Footprint().Pid}/fd").First(fd => (new FileInfo(fd).LinkTarget ?? "").Contains("memfd:fabric-bank", StringComparison.Ordinal));
        var shrink = Record.Exception(() =>
        {
            using var sealedFile = new FileStream(memfd, FileMode.Open, FileAccess.ReadWrite);
            sealedFile.SetLength(0);
        });
        Assert.True(shrink is IOException or UnauthorizedAccessException, $"shrinking the sealed memory file gave {shrink?.GetType().Name ?? "no error"}");

        // A new client of the shrunk file hears one sentence; one with a second pool fails over.
        var refused = await Assert.ThrowsAsync<EndpointException>(() => PoolConnection.ConnectAsync(FabricEndpoint.Parse(pool.Endpoint("shm")), "alice:wonderland"));
        Assert.Contains("no Fabric header", refused.Message, StringComparison.Ordinal);
        var failover = await ChildProgram.RunAsync("fabric-engine", $"generate --pool {pool.Endpoint("shm")} --pool {pool.Endpoint("tcp")} --token alice:wonderland --prompt-ids 5,9,13 --max-new-tokens 4 --slots 4");
        Assert.True(failover.Code == 0, failover.Stderr);
        Assert.False(pool.HasExited);
    }

    private static async Task AssertEveryExpertReadsAsync(PoolConnection client)
    {
        using var buffer = new NativeBuffer(client.Catalog.Experts.Max(e => e.Length));
        foreach (var expert in client.Catalog.Experts)
        {
            var memory = buffer.Memory[..(int)expert.Length];
            var status = await client.Transport.ReadAsync(new ReadRequest(expert.RegionId, client.Catalog.GetRegion(expert.RegionId).Key, expert.Offset, memory));
            Assert.Equal(ReadStatus.Ok, status);
            Assert.Equal(expert.Checksum, XxHash64.HashToUInt64(memory.Span));
        }
    }

    private static Process StartEngine(string arguments)
    {
        var info = new ProcessStartInfo("dotnet", $"\"{Path.Combine(AppContext.BaseDirectory, "fabric-engine.dll")}\" {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        return Process.Start(info)!;
    }

    private static async Task<(int Code, string Stdout, string Stderr)> FinishAsync(Process process)
    {
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            return (process.ExitCode, await stdout, await stderr);
        }
    }
}
