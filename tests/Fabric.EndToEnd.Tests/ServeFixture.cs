using Fabric.Model;

namespace Fabric.EndToEnd.Tests;

/// <summary>A generated tiny model (with its tokenizer) served by one <c>fabric-engine serve</c> for a test class.</summary>
public sealed class ServeFixture : IAsyncLifetime
{
    public const string ModelName = "tiny";

    public ServeFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "fabric-serve-" + Guid.NewGuid().ToString("N")[..12]);
        ModelDirectory = Path.Combine(Directory, ModelName);
        ModelGenerator.Write(ModelDirectory, ModelPresets.Tiny, seed: 5, routerSkew: 1);
    }

    public string Directory { get; }

    public string ModelDirectory { get; }

    public ServeProcess Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await ServeProcess.StartAsync($"--model \"{ModelDirectory}\" --max-batch 4 --max-seq-len 256 --slots 8 --prefill-chunk 16");

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
