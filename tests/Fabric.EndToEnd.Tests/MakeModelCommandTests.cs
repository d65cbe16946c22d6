using System.CommandLine;
using Fabric.Engine.Cli;
using Fabric.Model;

namespace Fabric.EndToEnd.Tests;

/// <summary>The make-model command the engine wires into fabric-engine, run through System.CommandLine.</summary>
public sealed class MakeModelCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "fabric-e2e-make-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
            Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task MakeModel_WritesAReadableCheckpoint_WithTheAskedDtypeAndSkew()
    {
        var root = new RootCommand { MakeModelCommand.Create() };
        var code = await root.Parse(["make-model", "--preset", "tiny", "--seed", "3", "--out", _dir, "--dtype", "f32", "--router-skew", "1.5"]).InvokeAsync();
        Assert.Equal(0, code);
        var checkpoint = Checkpoint.Open(_dir);
        Assert.Equal(TensorDtype.F32, checkpoint.Config.Dtype);
        Assert.Equal(1.5, checkpoint.Config.RouterSkew);
        Assert.Equal(TensorDtype.F32, checkpoint[0, 0].Gate.Dtype);
    }

    [Fact]
    public async Task MakeModel_UnknownPreset_IsRefused()
    {
        var root = new RootCommand { MakeModelCommand.Create() };
        var code = await root.Parse(["make-model", "--preset", "huge", "--out", _dir]).InvokeAsync();
        Assert.NotEqual(0, code);
        Assert.False(File.Exists(Path.Combine(_dir, "model.safetensors")));
    }

    [Theory]
    [InlineData("-5", "fabric-engine: --router-skew must be a number ≥ 0, not -5.")]
    [InlineData("NaN", "fabric-engine: --router-skew must be a number ≥ 0, not NaN.")]
    [InlineData("Infinity", "fabric-engine: --router-skew must be a number ≥ 0, not Infinity.")]
    public async Task MakeModel_RouterSkewOutOfRange_IsOneSentenceNamingTheOption(string value, string expected)
    {
        ChildProgram.AssertRefused(await ChildProgram.RunAsync("fabric-engine", $"make-model --out \"{_dir}\" --router-skew {value}"), expected);
        Assert.False(File.Exists(Path.Combine(_dir, "model.safetensors")));
    }
}
