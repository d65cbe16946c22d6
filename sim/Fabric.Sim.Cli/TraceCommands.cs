using System.CommandLine;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Cli;

/// <summary>import-trace: routing traces from outside into the engine's trace format.</summary>
internal static class TraceCommands
{
    public static Command ImportTrace()
    {
        var file = new Argument<string>("FILE") { Description = "plain text (one line per token and layer, token-major, expert ids) or CSV with header token,layer,experts" };
        var model = new Option<string>("--model") { Description = "the model that routed (preset tiny, small, medium, mixtral-8x7b, moe-32x64, or a config.json)", DefaultValueFactory = _ => "mixtral-8x7b" };
        var layers = new Option<int?>("--layers") { Description = "the layer count of a plain-text trace (checked against the model's)" };
        var output = new Option<string>("--out", "-o") { Description = "the JSONL trace to write (routing kind trace in a workload file; bench pager --trace)", Required = true };
        var cmd = new Command("import-trace", "Turn a published routing trace (plain text or CSV) into a trace that run, sweep and bench pager replay.");
        cmd.Arguments.Add(file);
        foreach (var o in new Option[] { model, layers, output })
            cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var m = SimModels.Resolve(r.GetValue(model)!, Directory.GetCurrentDirectory());
            if (r.GetValue(layers) is { } n && n != m.NumHiddenLayers)
                throw new TopologyException($"--layers {n}: the model {r.GetValue(model)} has {m.NumHiddenLayers} layers; give the model the trace was recorded on.");
            var path = r.GetValue(output)!;
            using var writer = new StringWriter();
            var (tokens, lines) = ExternalRoutingTrace.Convert(r.GetValue(file)!, m, writer);
            File.WriteAllText(path, writer.ToString());
            Console.Error.WriteLine($"fabric-sim: wrote {path}: {tokens} tokens x {m.NumHiddenLayers} layers ({lines} routes), top-{m.NumExpertsPerTok} of {m.NumLocalExperts} experts; no predictions recorded, so next-layer prefetch needs --predictor-accuracy.");
            return 0;
        });
        return cmd;
    }
}
