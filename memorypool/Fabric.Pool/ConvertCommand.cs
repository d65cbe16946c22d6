using System.CommandLine;
using System.Globalization;
using Fabric.Cli;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Pool.Server.Bank;
using Fabric.Pool.Server.Image;

namespace Fabric.Pool;

/// <summary><c>convert --model DIR --out FILE [--max-region-bytes N]</c>: writes the bank image that <c>serve --image FILE</c> maps.</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Checkpoint directory (config.json + *.safetensors).", Required = true };
        var output = new Option<string>("--out") { Description = "The bank image to write (replaced if present).", Required = true };
        var maxRegion = new Option<long>("--max-region-bytes") { Description = "Largest expert region in bytes.", DefaultValueFactory = _ => BankLayout.DefaultMaxRegionBytes };
        var command = new Command("convert", "Write a checkpoint's expert bank, exactly as served, into a bank image that 'serve --image' maps without loading.");
        command.Options.Add(model);
        command.Options.Add(output);
        command.Options.Add(maxRegion);
        command.SetAction((ParseResult r, CancellationToken ct) => ConsoleErrors.RunAsync("fabric-pool", () =>
        {
            if (r.GetValue(maxRegion) < BankLayout.Alignment)
                throw new FabricException($"--max-region-bytes {r.GetValue(maxRegion)}: give at least {BankLayout.Alignment} (one aligned page).");
            var checkpoint = Checkpoint.Open(r.GetValue(model)!);
            var path = r.GetValue(output)!;
            var stats = ProgressDisplay.RunBytes("converting", checkpoint.ExpertBytes + checkpoint.DenseBytes,
                progress => BankImageWriter.Write(checkpoint, path, r.GetValue(maxRegion), progress));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {stats.Path}: {stats.Experts} experts + {stats.DenseTensors} dense tensors, {stats.ImageBytes / 1e9:F3} GB, model fingerprint {ModelFingerprint.Format(stats.Fingerprint)}, in {stats.Seconds:F2} s"));
            return Task.FromResult(0);
        }));
        return command;
    }
}
