using System.Diagnostics;
using Fabric.Common;
using Fabric.Transport.Conformance;

namespace Fabric.Transport.Tests;

/// <summary>A server in a real child process, killed with SIGKILL mid-transfer: pending reads fail promptly, none hangs.</summary>
public sealed class ChildProcessKillTests
{
    [Theory]
    [InlineData("tcp://127.0.0.1:0")]
    [InlineData("shm:///dev/shm/fabric-test-child-{0}")]
    public async Task ServerProcessKilled_PendingReadsEndOkOrPeerGoneWithinSeconds(string listenPattern)
    {
        var listen = string.Format(System.Globalization.CultureInfo.InvariantCulture, listenPattern, Guid.NewGuid().ToString("N"));
        var assembly = typeof(ChildServer).Assembly.Location;
        using var child = Process.Start(new ProcessStartInfo("dotnet", [assembly, "serve", listen])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        try
        {
            var line = await child.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.False(string.IsNullOrEmpty(line), "the child server printed no endpoint");
            await using var client = await FabricTransports.ConnectAsync(line!);

            const int Count = 256;
            const int Size = 256 << 10;
            using var destination = new NativeBuffer(Count * (long)Size);
            var reads = new Task<ReadStatus>[Count];
            for (var i = 0; i < Count; i++)
                reads[i] = client.ReadAsync(new ReadRequest(1, 0xA11CE, i * 1024, destination.Memory.Slice(i * Size, Size))).AsTask();
            child.Kill();
            var clock = Stopwatch.StartNew();
            var statuses = await Task.WhenAll(reads).WaitAsync(TimeSpan.FromSeconds(5));
            for (var i = 0; i < Count; i++)
            {
                Assert.True(statuses[i] is ReadStatus.Ok or ReadStatus.PeerGone, $"read {i} ended with {statuses[i]}");
                if (statuses[i] == ReadStatus.Ok)
                    Assert.True(RegionPattern.Matches(1, i * 1024, destination.Span.Slice(i * Size, Size)), $"read {i} differs");
            }
            while (client.IsConnected && clock.Elapsed < TimeSpan.FromSeconds(5))
                await Task.Delay(10);
            Assert.False(client.IsConnected);
            Assert.Equal(ReadStatus.PeerGone, await client.ReadAsync(new ReadRequest(1, 0xA11CE, 0, new byte[64])));
        }
        finally
        {
            if (!child.HasExited)
                child.Kill();
            await child.WaitForExitAsync();
            var endpoint = FabricEndpoint.Parse(listen);
            if (endpoint.Scheme == "shm")
            {
                File.Delete(endpoint.Path);
                File.Delete(endpoint.Path + ".ctl");
            }
        }
    }
}
