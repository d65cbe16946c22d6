using Fabric.Model;

namespace Fabric.EndToEnd.Tests;

/// <summary>A generated tiny model (with its tokenizer) served by one <c>fabric-engine serve</c> for a test class.</summary>
public sealed class ServeFixture : IAsyncLifetime
{
    public const string ModelName = "tiny";

    private readonly ServeModel _model = new();

    public string Directory => _model.Directory;

    public string ModelDirectory => _model.ModelDirectory;

    public ServeProcess Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await ServeProcess.StartAsync($"--model \"{ModelDirectory}\" --max-batch 4 --max-seq-len 256 --slots 8 --prefill-chunk 16");

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        _model.Dispose();
    }
}

/// <summary>A generated tiny model (with its tokenizer) named <see cref="ServeFixture.ModelName"/> in a temp directory.</summary>
public sealed class ServeModel : IDisposable
{
    public ServeModel()
    {
        Directory = Path.Combine(Path.GetTempPath(), "fabric-serve-" + Guid.NewGuid().ToString("N")[..12]);
        ModelDirectory = Path.Combine(Directory, ServeFixture.ModelName);
        ModelGenerator.Write(ModelDirectory, ModelPresets.Tiny, seed: 5, routerSkew: 1);
    }

    public string Directory { get; }

    public string ModelDirectory { get; }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
