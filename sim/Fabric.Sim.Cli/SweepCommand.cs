using System.CommandLine;
using System.Globalization;
using Fabric.Sim.Network;
using Fabric.Sim.Reports;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;
using Spectre.Console;

namespace Fabric.Sim.Cli;

/// <summary><c>fabric-sim sweep</c>: every combination of topologies, slot counts, policies, prefetch modes and sharing models.</summary>
internal static class SweepCommand
{
    public static Command Create()
    {
        var topologies = new Option<string[]>("--topology", "-t") { Description = "topology YAML (repeat to compare topologies)", Required = true, AllowMultipleArgumentsPerToken = true };
        var workload = new Option<string>("--workload", "-w") { Description = "workload YAML", Required = true };
        var slots = new Option<string?>("--slots") { Description = "comma-separated slot counts per engine (default: the workload's; '12.5%,25%' for fractions of all experts)" };
        var policies = new Option<string?>("--policy") { Description = "comma-separated policies (default: the workload's)" };
        var prefetches = new Option<string?>("--prefetch") { Description = "comma-separated prefetch modes (default: the workload's)" };
        var tokens = new Option<int?>("--tokens") { Description = "override decode tokens per engine" };
        var accuracy = new Option<double?>("--predictor-accuracy") { Description = "next-layer prefetch with a predictor right with probability P (1: an oracle, labelled so); default: a trace's recorded predictions" };
        var sharing = new Option<string?>("--sharing") { Description = "comma-separated sharing models: max-min (exact), fifo (an approximation, faster); both to see fifo's error (default: the workload's)" };
        var output = new Option<string>("--out", "-o") { Description = "directory for sweep.csv and report.html", DefaultValueFactory = _ => "sweep-out" };
        var json = new Option<string?>("--json") { Description = "also write every point's results as a JSON array to PATH" };
        var jobs = new Option<int>("--jobs", "-j") { Description = "points run side by side, one core each (default: every core)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cmd = new Command("sweep", "Vary slots, policy, prefetch, sharing model or topology; write CSV and an HTML report with SVG charts.");
        foreach (var o in new Option[] { topologies, workload, slots, policies, prefetches, tokens, accuracy, sharing, output, jobs, json })
            cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            if (r.GetValue(jobs) < 1)
                throw new TopologyException($"--jobs {r.GetValue(jobs)}: give at least 1.");
            var plan = new List<(Topology.Topology T, Workload W)>();
            foreach (var path in r.GetValue(topologies)!)
            {
                var t = TopologyLoader.LoadFile(path);
                var w = WorkloadLoader.LoadFile(r.GetValue(workload)!, t);
                w = w with
                {
                    DecodeTokens = WorkloadOverrides.Tokens(r.GetValue(tokens)) ?? w.DecodeTokens,
                    PredictionAccuracy = WorkloadOverrides.PredictorAccuracy(r.GetValue(accuracy)) ?? w.PredictionAccuracy,
                };
                plan.AddRange(
                    from s in SlotList(r.GetValue(slots), w)
                    from p in List(r.GetValue(policies), w.Policy).Select(WorkloadOverrides.Policy)
                    from f in List(r.GetValue(prefetches), w.Prefetch).Select(WorkloadOverrides.Prefetch)
                    from m in List(r.GetValue(sharing), SharingNames.Of(w.Sharing)).Select(WorkloadOverrides.Sharing)
                    select (t, WorkloadOverrides.SharingChecked(w with { Slots = s, Policy = p, Prefetch = f, Sharing = m }).PredictorChecked()));
            }
            var done = 0;
            var console = new Lock();
            var points = SweepRunner.Run(plan, r.GetValue(jobs), (_, p) =>
            {
                lock (console)
                {
                    AnsiConsole.MarkupLine(CultureInfo.InvariantCulture,
                        $"[grey][[{++done}/{plan.Count}]][/] {Markup.Escape(p.Topology)} slots {p.Slots} {p.Policy}/{p.Prefetch}" +
                        $"{(p.Result.Sharing == SharingNames.Fifo ? " (fifo)" : "")}: " +
                        $"[bold]{p.Result.TotalTokensPerSecond:0.0} tokens/s[/], hit rate {p.Result.HitRate:P1}, stall {Units.FormatDuration(p.Result.StallNs)}");
                }
            });
            var dir = r.GetValue(output)!;
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "sweep.csv"), SweepReport.Csv(points));
            File.WriteAllText(Path.Combine(dir, "report.html"), SweepReport.Html(points, $"fabric-sim sweep: {Path.GetFileName(r.GetValue(workload))}"));
            if (r.GetValue(json) is { } jsonPath)
                ResultJson.Write(jsonPath, new System.Text.Json.Nodes.JsonArray([.. points.Select(p => (System.Text.Json.Nodes.JsonNode?)ResultJson.ToJson(p.Result))]));
            AnsiConsole.MarkupLine($"wrote {Markup.Escape(Path.Combine(dir, "sweep.csv"))} and {Markup.Escape(Path.Combine(dir, "report.html"))}");
            return 0;
        });
        return cmd;
    }

    private static IEnumerable<string> List(string? text, string fallback) =>
        text is null ? [fallback] : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static IEnumerable<int> SlotList(string? text, Workload w)
    {
        foreach (var item in List(text, w.Slots.ToString(CultureInfo.InvariantCulture)))
        {
            if (item.EndsWith('%') && double.TryParse(item[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var pct) && pct > 0)
                yield return Math.Clamp((int)Math.Round(pct / 100 * w.Model.TotalExperts), 1, w.Model.TotalExperts);
            else if (int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
                yield return Math.Min(n, w.Model.TotalExperts);
            else
                throw new TopologyException($"--slots '{item}' is neither a positive count nor a percentage such as 25%.");
        }
    }
}
