using System.Diagnostics;
using System.Runtime.InteropServices;
using Fabric.Common.Native;

namespace Fabric.Transport.Tests;

/// <summary>shm:// endpoints that name something other than a regular file or a DAX device are refused at once.</summary>
public sealed class ShmEndpointTypeTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("fabric-shm-type-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Connect_ToAFifo_FailsWithinASecond_SayingItIsAFifo()
    {
        var fifo = Path.Combine(_directory, "pool.fifo");
        Assert.True(LibC.Mkfifo(fifo, 0x1B6) == 0, $"mkfifo failed: errno {Marshal.GetLastPInvokeError()}");
        var endpoint = FabricEndpoint.Parse("shm://" + fifo);

        var clock = Stopwatch.StartNew();
        var connect = FabricTransports.ConnectAsync(endpoint, new FabricClientOptions { ConnectTimeout = TimeSpan.FromSeconds(1) }).AsTask();
        var finished = await Task.WhenAny(connect, Task.Delay(TimeSpan.FromSeconds(5)));

        Assert.Same(connect, finished);
        var error = await Assert.ThrowsAsync<EndpointException>(() => connect);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        Assert.Contains($"{fifo} is a fifo", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_ToADirectory_FailsSayingItIsADirectory()
    {
        var endpoint = FabricEndpoint.Parse("shm://" + _directory);

        var error = await Assert.ThrowsAsync<EndpointException>(async () => await FabricTransports.ConnectAsync(endpoint));

        Assert.Contains($"{_directory} is a directory", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_ToACharacterDeviceThatIsNotDax_FailsSayingSo()
    {
        var error = await Assert.ThrowsAsync<EndpointException>(async () => await FabricTransports.ConnectAsync(FabricEndpoint.Parse("shm:///dev/null")));

        Assert.Contains("/dev/null is a character device that is not a DAX device", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public unsafe void Statx_OfARegularFile_ReportsItsTypeAndSize()
    {
        var file = Path.Combine(_directory, "sized");
        File.WriteAllBytes(file, new byte[12345]);
        LibC.StatxBuffer status;

        Assert.Equal(0, LibC.Statx(LibC.AtCurrentDirectory, file, 0, LibC.StatxType | LibC.StatxSize, &status));

        Assert.Equal(LibC.FileTypeRegular, status.Mode & LibC.FileTypeMask);
        Assert.Equal(12345UL, status.Size);
    }
}
