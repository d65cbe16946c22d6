using System.CommandLine;
using Fabric.Sim.Topology;
using Fabric.Sim.Topology.Hwloc;

namespace Fabric.Sim.Cli;

/// <summary>import-hwloc and calibrate: the commands that write topology files.</summary>
internal static class TopologyCommands
{
    public static Command ImportHwloc()
    {
        var file = new Argument<string>("FILE") { Description = "the output of `lstopo --of xml FILE.xml` (hwloc 2.x or 3.x)" };
        var output = new Option<string?>("--out", "-o") { Description = "where to write the topology YAML (default: stdout)" };
        var json = new Option<string?>("--json") { Description = "also write the import summary (found, skipped, assumed, warnings) as JSON to PATH" };
        var cmd = new Command("import-hwloc", "Turn an hwloc XML file into a topology file, with a summary of what it found and skipped.");
        cmd.Arguments.Add(file);
        cmd.Options.Add(output);
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            var (doc, summary) = HwlocImporter.ImportFile(r.GetValue(file)!);
            var yaml = Yaml.Serializer.Serialize(doc);
            foreach (var line in summary.Lines())
                Console.Error.WriteLine(line);
            try
            {
                var t = TopologyLoader.Load(yaml, doc.Name ?? "imported");
                Console.Error.WriteLine($"topology: {t.Nodes.Count} nodes and {t.Links.Count} links{(summary.Warnings.Count == 0 ? "; it loads as written" : "; it loads, but read the warnings above")}.");
            }
            catch (TopologyException e)
            {
                Console.Error.WriteLine($"topology: needs editing before use: {e.Message}");
            }
            if (r.GetValue(json) is { } jsonPath)
                File.WriteAllText(jsonPath, System.Text.Json.JsonSerializer.Serialize(summary, new System.Text.Json.JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower }));
            var path = r.GetValue(output);
            if (path is null)
                Console.Out.Write(yaml);
            else
                File.WriteAllText(path, yaml);
            return 0;
        });
        return cmd;
    }

    public static Command Calibrate()
    {
        var from = new Option<string>("--from") { Description = "JSON written by `./fabric bench transport --json PATH`", Required = true };
        var topology = new Option<string>("--topology") { Description = "the topology file whose calibration block to rewrite", DefaultValueFactory = _ => "topologies/loopback.yaml" };
        var cmd = new Command("calibrate", "Rewrite a topology's calibration block from transport benchmark results.");
        cmd.Options.Add(from);
        cmd.Options.Add(topology);
        cmd.SetAction(r =>
        {
            var path = r.GetValue(topology)!;
            if (!File.Exists(path))
                throw new TopologyException($"The topology file '{path}' does not exist.");
            var measured = Calibrator.ReadBenchJson(r.GetValue(from)!);
            var text = Calibrator.Rewrite(File.ReadAllText(path), measured,
                $"./fabric bench transport --json {Path.GetFileName(r.GetValue(from))} on {Environment.MachineName}", DateOnly.FromDateTime(DateTime.UtcNow));
            TopologyLoader.Load(text, path);
            File.WriteAllText(path, text);
            foreach (var m in measured)
                Console.WriteLine($"{m.Transport,-6} {Units.FormatBandwidth(m.Bandwidth),12} {Units.FormatDuration(m.LatencyNs),10}");
            Console.WriteLine($"Rewrote the calibration block of {path}.");
            return 0;
        });
        return cmd;
    }
}
