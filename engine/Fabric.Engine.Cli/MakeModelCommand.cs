using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Fabric.Cli;
using Fabric.Common;
using Fabric.Model;

namespace Fabric.Engine.Cli;

/// <summary>
/// <c>make-model --family F --preset tiny|small|medium --seed N --out DIR [--dtype bf16|f32] [--router-skew ALPHA] [--shards N]</c>:
/// writes a synthetic checkpoint of family F (mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2) with <see cref="ModelGenerator"/>. Owned by the memory-pool part; the engine wires it
/// into fabric-engine's root command.
/// </summary>
public static class MakeModelCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Model size: tiny (seconds, for tests), small (~100 MB), medium (~2 GB).", DefaultValueFactory = _ => "tiny" };
        preset.AcceptOnlyFromAmong([.. ModelPresets.Names]);
        var seed = new Option<ulong>("--seed") { Description = "Seed of the deterministic weights.", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out") { Description = "Directory to write config.json and model.safetensors into.", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Weight dtype: bf16 or f32.", DefaultValueFactory = _ => "bf16" };
        dtype.AcceptOnlyFromAmong("bf16", "f32", "f16");
        var family = new Option<string>("--family") { Description = "Model family (Hugging Face model_type): " + string.Join(", ", Architectures.All) + ".", DefaultValueFactory = _ => Architectures.Mixtral };
        family.AcceptOnlyFromAmong([.. Architectures.All]);
        var shards = new Option<int>("--shards") { Description = "Write the weights as N shards (model-0000K-of-0000N.safetensors + model.safetensors.index.json), as released checkpoints are.", DefaultValueFactory = _ => 1 };
        var skew = new Option<double>("--router-skew") { Description = "Zipf exponent ALPHA of each layer's expert popularity, applied through the router (0 = flat; 1 ≈ Mixtral's 15–20% top-expert share with 8 experts, top-2).", DefaultValueFactory = _ => 0 };

        var command = new Command("make-model", "Write a synthetic checkpoint of a model family (config.json + safetensors in its Hugging Face layout) with deterministic weights.");
        command.Options.Add(preset);
        command.Options.Add(seed);
        command.Options.Add(output);
        command.Options.Add(dtype);
        command.Options.Add(skew);
        command.Options.Add(family);
        command.Options.Add(shards);
        command.SetAction((ParseResult r, CancellationToken ct) => ConsoleErrors.RunAsync("fabric-engine", () =>
        {
            var routerSkew = r.GetValue(skew);
            if (!(routerSkew >= 0) || double.IsInfinity(routerSkew))
                throw new FabricException($"--router-skew must be a number ≥ 0, not {routerSkew.ToString(CultureInfo.InvariantCulture)}.");
            var shardCount = r.GetValue(shards);
            if (shardCount < 1 || shardCount > 99_999)
                throw new FabricException($"--shards must be between 1 and 99999, not {shardCount}.");
            TensorDtypes.TryParse(r.GetValue(dtype), out var type);
            var config = ModelPresets.Get(r.GetValue(preset)!, type, r.GetValue(family)!);
            var directory = r.GetValue(output)!;
            var total = ModelGenerator.DataBytes(config);
            var watch = Stopwatch.StartNew();
            var lastReport = 0L;
            var progress = new Progress<long>(written =>
            {
                if (watch.ElapsedMilliseconds - lastReport < 2000)
                    return;
                lastReport = watch.ElapsedMilliseconds;
                Console.Error.WriteLine($"make-model: {written / 1e6:F0} of {total / 1e6:F0} MB written");
            });
            config = ModelGenerator.Write(directory, config, r.GetValue(seed), routerSkew, total > 256L << 20 ? progress : null, shardCount);
            var seconds = watch.Elapsed.TotalSeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {directory}: {config.Architecture}, {config.NumHiddenLayers} layers ({config.ExpertLayers} sparse) × {config.NumLocalExperts} experts, top-{config.NumExpertsPerTok}, hidden {config.HiddenSize}, {config.Dtype}, router skew {config.RouterSkew}; {total / 1e6:F1} MB in {seconds:F1} s ({total / 1e9 / Math.Max(seconds, 1e-9):F2} GB/s)"));
            return Task.FromResult(0);
        }));
        return command;
    }
}
