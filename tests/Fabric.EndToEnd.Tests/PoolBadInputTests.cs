using Fabric.Model;

namespace Fabric.EndToEnd.Tests;

/// <summary>A bad checkpoint or option: one sentence on stderr naming the file, a non-zero exit, nothing served.</summary>
public sealed class PoolBadInputTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "fabric-e2e-bad-" + Guid.NewGuid().ToString("N")[..12]);

    public PoolBadInputTests() => ModelGenerator.Write(_dir, ModelPresets.Tiny, seed: 4);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task TruncatedCheckpoint_ExitsNonZero_WithOneSentence_AndServesNothing()
    {
        var model = Path.Combine(_dir, "model.safetensors");
        using (var f = File.OpenWrite(model))
            f.SetLength(f.Length / 2);
        var (code, stdout, stderr) = await PoolProcess.RunAsync($"serve --model {_dir} --listen tcp://127.0.0.1:0");
        Assert.NotEqual(0, code);
        Assert.DoesNotContain("listening", stdout, StringComparison.Ordinal);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("fabric-pool: ", line, StringComparison.Ordinal);
        Assert.Contains(model, line, StringComparison.Ordinal);
        Assert.Contains("truncated", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownArchitecture_ExitsNonZero_NamingConfig()
    {
        var config = Path.Combine(_dir, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"mixtral\"", "\"gpt2\"", StringComparison.Ordinal));
        var (code, stdout, stderr) = await PoolProcess.RunAsync($"inspect --model {_dir}");
        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Contains($"{config}: unknown architecture 'gpt2'", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadListenUri_MissingTokensFile_AndTinyRegionCap_AreOneSentence()
    {
        var (code, _, stderr) = await PoolProcess.RunAsync($"serve --model {_dir} --listen tcp://127.0.0.1");
        Assert.Equal(2, code);
        Assert.Contains("has no host and port", stderr, StringComparison.Ordinal);
        (code, _, stderr) = await PoolProcess.RunAsync($"serve --model {_dir} --listen tcp://127.0.0.1:0 --tokens {_dir}/nope");
        Assert.Equal(2, code);
        Assert.Contains("The tokens file", stderr, StringComparison.Ordinal);
        (code, _, stderr) = await PoolProcess.RunAsync($"serve --model {_dir} --listen tcp://127.0.0.1:0 --max-region-bytes 0");
        Assert.Equal(2, code);
        Assert.Equal("fabric-pool: --max-region-bytes 0: give at least 4096 (one aligned page).", stderr.Trim());
    }
}
