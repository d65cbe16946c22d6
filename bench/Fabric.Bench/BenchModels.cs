using Fabric.Model;

namespace Fabric.Bench;

/// <summary>Finds the model a pool benchmark runs on: <c>--model DIR</c>, or a generated preset cached under artifacts/models.</summary>
internal static class BenchModels
{
    /// <summary>The checkpoint directory for <paramref name="model"/> or, when null, the generated <paramref name="preset"/> (made once).</summary>
    public static string Resolve(string? model, string preset)
    {
        if (model is not null)
            return model;
        var directory = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "models", $"{preset}-seed1");
        directory = Path.GetFullPath(directory);
        if (!File.Exists(Path.Combine(directory, "model.safetensors")) || !File.Exists(Path.Combine(directory, "config.json")))
        {
            Console.Error.WriteLine($"bench: generating the {preset} model into {directory} (once)...");
            ModelGenerator.Write(directory, ModelPresets.Get(preset), seed: 1, routerSkew: 1);
        }
        return directory;
    }
}
