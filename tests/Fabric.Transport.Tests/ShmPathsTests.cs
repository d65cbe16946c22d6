using Fabric.Transport.Shm;

namespace Fabric.Transport.Tests;

/// <summary>Where an shm endpoint's pieces go; DAX devices cannot be tried here, so their naming is checked directly.</summary>
public sealed class ShmPathsTests
{
    [Fact]
    public void ControlSocket_FileGetsSiblingCtl_DaxDeviceGetsOneUnderTemp()
    {
        Assert.Equal("/dev/shm/bank.ctl", ShmPaths.ControlSocket("/dev/shm/bank"));
        Assert.True(ShmPaths.IsDax("/dev/dax0.0"));
        Assert.False(ShmPaths.IsDax("/dev/shm/dax"));
        Assert.Equal(Path.Combine(Path.GetTempPath(), "fabric-dax0.0.ctl"), ShmPaths.ControlSocket("/dev/dax0.0"));
    }

    [Fact]
    public void Create_MissingDaxDevice_FailsWithOneSentence()
    {
        var error = Assert.Throws<EndpointException>(() => new ShmRegionStore("/dev/dax9.9", [new RegionSpec(1, 4096, 1)]));
        Assert.Contains("dax9.9", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Create_ControlSocketPathTooLong_FailsWithOneSentence()
    {
        var error = Assert.Throws<EndpointException>(() => new ShmRegionStore("/dev/shm/" + new string('x', 120), [new RegionSpec(1, 4096, 1)]));
        Assert.Contains("longer than", error.Message, StringComparison.Ordinal);
    }
}
