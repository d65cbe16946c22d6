using System.Diagnostics;
using System.Globalization;
using Fabric.Model;

namespace Fabric.Bench;

/// <summary>
/// The models the benchmarks run on: generated once per (family, preset, router skew, seed) and reused between runs, under
/// artifacts/models/ in the repository, else ~/.cache/fabric/models/.
/// </summary>
internal static class ModelCache
{
    /// <summary>
    /// <paramref name="model"/> when the user gave one (--model DIR), else the generated <paramref name="preset"/> at
    /// router skew <paramref name="skew"/>.
    /// </summary>
    public static string Resolve(string? model, string preset, double skew = 1) => model ?? Ensure(preset, skew);

    /// <summary>The directory of (preset, skew, seed), generated first if it is not there yet.</summary>
    public static string Ensure(string preset, double skew, ulong seed = 1, string family = Architectures.Mixtral)
    {
        var prefix = family == Architectures.Mixtral ? "" : family + "-";
        var name = string.Create(CultureInfo.InvariantCulture, $"{prefix}{preset}-skew{skew:0.##}-seed{seed}");
        var directory = Path.Combine(Root(), name);
        if (File.Exists(Path.Combine(directory, "config.json")) && File.Exists(Path.Combine(directory, "model.safetensors")))
        {
            // A model cached before make-model wrote tokenizers gets the tokenizer that matches its vocabulary.
            if (!Fabric.Model.Tokenization.TextTokenizer.Exists(directory))
                Fabric.Model.Tokenization.GeneratedTokenizer.Write(directory, ModelConfigReader.Load(Path.Combine(directory, "config.json")));
            return directory;
        }
        var config = ModelPresets.Get(preset, TensorDtype.BF16, family);
        var total = ModelGenerator.DataBytes(config);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"generating the {family} {preset} model (router skew {skew}, {total / 1e6:0} MB) into {directory}..."));
        var watch = Stopwatch.StartNew();
        var last = 0L;
        ModelGenerator.Write(directory, config, seed, skew, new Progress<long>(written =>
        {
            if (watch.ElapsedMilliseconds - last < 3000)
                return;
            last = watch.ElapsedMilliseconds;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {written / 1e6:0} of {total / 1e6:0} MB"));
        }));
        return directory;
    }

    private static string Root()
    {
        var repo = Path.Combine(Environment.CurrentDirectory, "artifacts");
        if (Directory.Exists(repo))
            return Path.Combine(repo, "models");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "fabric", "models");
    }
}
