using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Fabric.Cli;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Server.Bank;

namespace Fabric.Pool;

/// <summary><c>inspect --model DIR [--json PATH]</c>: the bank layout a checkpoint would get, without loading or serving it.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Checkpoint directory (config.json + *.safetensors).", Required = true };
        var json = new Option<string?>("--json") { Description = "Also write the layout as JSON to this file." };
        var command = new Command("inspect", "Print the bank layout of a checkpoint: experts per layer, bytes per expert, regions, totals.");
        command.Options.Add(model);
        command.Options.Add(json);
        command.SetAction((ParseResult r, CancellationToken ct) => ConsoleErrors.RunAsync("fabric-pool", () =>
        {
            var checkpoint = Checkpoint.Open(r.GetValue(model)!);
            var layout = BankLayout.Compute(checkpoint);
            Print(checkpoint, layout);
            if (r.GetValue(json) is { } path)
                WriteJson(path, checkpoint, layout);
            return Task.FromResult(0);
        }));
        return command;
    }

    private static void Print(Checkpoint checkpoint, BankLayout layout)
    {
        var c = checkpoint.Config;
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"model     {checkpoint.Directory} ({c.Architecture}, {c.Dtype}, {checkpoint.Files.Count} file(s))"));
        Console.WriteLine(string.Create(inv, $"shape     {c.NumHiddenLayers} layers{(c.ExpertLayers < c.NumHiddenLayers ? $" ({c.ExpertLayers} sparse)" : "")}, {c.NumLocalExperts} experts/layer, top-{c.NumExpertsPerTok}, hidden {c.HiddenSize}, expert width {c.IntermediateSize}, vocab {c.VocabSize}, router skew {c.RouterSkew}"));
        if (c.SharedMlpWidth > 0)
            Console.WriteLine(string.Create(inv, $"shared    an always-on MLP of width {c.SharedMlpWidth} per sparse layer ({checkpoint.SharedExperts.Count} in all), dense: never paged"));
        Console.WriteLine();
        Console.WriteLine($"{"layer",5}  {"experts",7}  {"bytes/expert",14}  {"layer bytes",14}  regions");
        for (var layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            var expertLayer = c.ExpertLayerOf(layer);
            if (expertLayer < 0)
            {
                Console.WriteLine($"{layer,5}  {"dense",7}");
                continue;
            }
            var indices = Enumerable.Range(expertLayer * c.NumLocalExperts, c.NumLocalExperts).ToList();
            var perExpert = indices.Select(i => checkpoint.Experts[i].Bytes).Distinct().ToList();
            var regions = indices.Select(i => layout.Experts[i].RegionId).Distinct().Order();
            var sizes = perExpert.Count == 1 ? ByteSize.Format(perExpert[0]) : $"{ByteSize.Format(perExpert.Min())}–{ByteSize.Format(perExpert.Max())}";
            Console.WriteLine($"{layer,5}  {c.NumLocalExperts,7}  {sizes,14}  {ByteSize.Format(indices.Sum(i => checkpoint.Experts[i].Bytes)),14}  {string.Join(",", regions)}");
        }
        Console.WriteLine();
        Console.WriteLine($"experts   {checkpoint.Experts.Count} in {layout.RegionLengths.Count - 1} region(s), {ByteSize.Format(checkpoint.ExpertBytes)}");
        Console.WriteLine($"dense     {checkpoint.Dense.Count} tensors in region {layout.DenseRegionId}, {ByteSize.Format(checkpoint.DenseBytes)}");
        Console.WriteLine($"bank      {ByteSize.Format(layout.TotalBytes)} resident (4 KiB aligned)");
    }

    private static void WriteJson(string path, Checkpoint checkpoint, BankLayout layout)
    {
        var document = new
        {
            model = checkpoint.Config,
            regions = layout.RegionLengths.Select((length, i) => new { id = i + 1, length }),
            experts = checkpoint.Experts.Select((e, i) => new { layer = e.Layer, expert = e.Expert, region = layout.Experts[i].RegionId, offset = layout.Experts[i].Offset, length = layout.Experts[i].Length }),
            dense = checkpoint.Dense.Select((t, i) => new { name = t.Name, shape = t.Shape, dtype = t.Dtype.SafetensorsName(), region = layout.Dense[i].RegionId, offset = layout.Dense[i].Offset, length = t.Length }),
            expert_bytes = checkpoint.ExpertBytes,
            dense_bytes = checkpoint.DenseBytes,
            bank_bytes = layout.TotalBytes,
        };
        File.WriteAllText(path, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
    }

}
