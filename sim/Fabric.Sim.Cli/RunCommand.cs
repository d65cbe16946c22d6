using System.CommandLine;
using Fabric.Cli;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;
using Spectre.Console;

namespace Fabric.Sim.Cli;

/// <summary><c>fabric-sim run</c>: one workload on one topology, a table and optionally JSON.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var topology = new Option<string>("--topology", "-t") { Description = "topology YAML file", Required = true };
        var workload = new Option<string>("--workload", "-w") { Description = "workload YAML file", Required = true };
        var json = new Option<string?>("--json") { Description = "also write the results as JSON to PATH" };
        var slots = new Option<int?>("--slots") { Description = "override the workload's expert slots per engine" };
        var policy = new Option<string?>("--policy") { Description = "override the eviction policy (lru, lfu, activation, belady)" };
        var prefetch = new Option<string?>("--prefetch") { Description = "override the prefetch mode (none, next-layer, history)" };
        var tokens = new Option<int?>("--tokens") { Description = "override decode tokens per engine" };
        var accuracy = new Option<double?>("--predictor-accuracy") { Description = "next-layer prefetch with a predictor right with probability P (1: an oracle, labelled so); default: a trace's recorded predictions" };
        var sharing = new Option<string?>("--sharing") { Description = "override how transfers share links: max-min (exact) or fifo (an approximation, faster)" };
        var quantum = new Option<string?>("--rate-quantum") { Description = "recompute link shares only every DURATION (e.g. 10us): an approximation; exact is the default" };
        var threads = new Option<int?>("--threads") { Description = "with fifo links, how many threads run the engines (default: one per core, at least 32 engines each); the results are the same on any number" };
        var cmd = new Command("run", "Simulate a workload on a topology: tokens/s, latency, hit rate, stall, busiest links.");
        foreach (var o in new Option[] { topology, workload, json, slots, policy, prefetch, tokens, accuracy, sharing, quantum, threads })
            cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var t = TopologyLoader.LoadFile(r.GetValue(topology)!);
            var w = WorkloadLoader.LoadFile(r.GetValue(workload)!, t);
            w = w with
            {
                Slots = WorkloadOverrides.Slots(r.GetValue(slots), w) ?? w.Slots,
                Policy = r.GetValue(policy) is { } p ? WorkloadOverrides.Policy(p) : w.Policy,
                Prefetch = r.GetValue(prefetch) is { } f ? WorkloadOverrides.Prefetch(f) : w.Prefetch,
                DecodeTokens = WorkloadOverrides.Tokens(r.GetValue(tokens)) ?? w.DecodeTokens,
                PredictionAccuracy = WorkloadOverrides.PredictorAccuracy(r.GetValue(accuracy)) ?? w.PredictionAccuracy,
                Sharing = r.GetValue(sharing) is { } m ? WorkloadOverrides.Sharing(m) : w.Sharing,
                RateQuantumNs = r.GetValue(quantum) is { } q ? (Units.TryParseDuration(q, out var ns) ? ns : throw new TopologyException($"--rate-quantum '{q}' is not a duration such as 10us.")) : w.RateQuantumNs,
            };
            w = WorkloadOverrides.SharingChecked(w).PredictorChecked();
            var threadCount = WorkloadOverrides.Threads(r.GetValue(threads));
            var result = ProgressDisplay.RunFraction("simulating", "the layer visits", progress => SimRunner.Run(t, w, progress, threadCount));
            Report.Print(result, w);
            if (r.GetValue(json) is { } path)
            {
                ResultJson.Write(path, ResultJson.ToJson(result));
                AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(path)}[/]");
            }
            return 0;
        });
        return cmd;
    }
}
