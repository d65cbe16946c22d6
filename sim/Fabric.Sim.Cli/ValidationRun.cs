using System.Text.Json;
using Fabric.Common;
using Fabric.Engine.Runtime;
using Fabric.Model;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;
using Spectre.Console;

namespace Fabric.Sim.Cli;

/// <summary>
/// One comparison of <c>fabric-sim validate</c> over one transport: two calibration runs of the real engine around the
/// recorded run, the link fitted from the calibration runs' fetch logs, and the recorded trace replayed on it.
/// </summary>
internal static class ValidationRun
{
    // The run being predicted and the calibration runs generate from different prompts, so they route differently.
    private const string RecordedPrompt = "1,2,3,4,5,6,7,8";
    private static readonly string[] CalibrationPrompts = ["11,12,13,14,15,16,17,18", "21,22,23,24,25,26,27,28"];

    /// <summary>Where and what to run; <c>Suffix</c> names this repetition's files ("" for the first).</summary>
    public sealed record Setup(string Scheme, string Endpoint, string Dir, string Suffix, ModelConfig Model, int Slots, int Tokens,
        Topology.Topology Topology, string EngineDll, bool Replay, FetchPathProbe.Result? Probe, double? HitSlowdownOverride);

    /// <summary>Measured against simulated: decode tokens/s, decode stall, and stall with the prefill (ns).</summary>
    public sealed record Comparison(double MeasuredTps, double SimulatedTps, double MeasuredDecodeStall, double SimulatedDecodeStall,
        double MeasuredStall, double SimulatedStall)
    {
        public double TpsError => (SimulatedTps - MeasuredTps) / MeasuredTps;
        public double StallError => MeasuredDecodeStall > 0 ? (SimulatedDecodeStall - MeasuredDecodeStall) / MeasuredDecodeStall : 0;
    }

    /// <summary>What repetition <paramref name="run"/> (from 1) adds to its file names: nothing for the first.</summary>
    public static string Suffix(int run) => run == 1 ? "" : $"-{run}";

    public static async Task<Comparison> CompareAsync(Setup setup)
    {
        var (scheme, endpoint, dir, suffix, model, slots, tokens, topology, engineDll, replay, probe, hitSlowdownOverride) = setup;
        async Task RecordAsync(string prompt, string stats, string? trace)
        {
            await using var engine = ChildProcess.Start(engineDll,
                $"generate --pool {endpoint} --token sim:validate --prompt-ids {prompt} --max-new-tokens {tokens} --slots {slots} " +
                $"--policy lru --prefetch none --stats-json \"{stats}\"" + (trace is null ? "" : $" --trace-out \"{trace}\""));
            var code = await engine.WaitForExitAsync(TimeSpan.FromMinutes(10)).ConfigureAwait(false);
            if (code != 0)
                throw new FabricException($"fabric-engine generate over {scheme} failed (exit {code}): {engine.Stderr.Trim()}");
        }

        // Calibrate the link from the engine's own fetch path as the engine drives it — fetches beside its
        // compute, on its thread pool, in a fresh process — with two calibration runs on other prompts just
        // before and just after, never from, the run being predicted.
        var calibration = new[] { Path.Combine(dir, $"calibration-before-{scheme}{suffix}.json"), Path.Combine(dir, $"calibration-after-{scheme}{suffix}.json") };
        var trace = Path.Combine(dir, $"trace-{scheme}{suffix}.jsonl");
        var stats = Path.Combine(dir, $"stats-{scheme}{suffix}.json");
        if (!replay)
        {
            AnsiConsole.MarkupLine($"calibrating and recording over {Markup.Escape(endpoint)}{(suffix == "" ? "" : $" (run {suffix[1..]})")}...");
            await RecordAsync(CalibrationPrompts[0], calibration[0], Path.ChangeExtension(calibration[0], ".jsonl")).ConfigureAwait(false);
            await RecordAsync(RecordedPrompt, stats, trace).ConfigureAwait(false);
            await RecordAsync(CalibrationPrompts[1], calibration[1], Path.ChangeExtension(calibration[1], ".jsonl")).ConfigureAwait(false);
        }
        var calibrationRuns = calibration.Select(c => (Log: (IReadOnlyList<FetchTiming>)ReadFetchLog(c), RoutingTrace.Load(Path.ChangeExtension(c, ".jsonl")).Visits)).ToList();
        var fit = FetchPathFit.Fit(calibrationRuns.Select(r => r.Log), model.ExpertBytes);
        double bandwidth, latency;
        if (fit is not null)
        {
            (bandwidth, latency) = (fit.BytesPerSecond, fit.LatencyNs);
            AnsiConsole.MarkupLine($"{scheme} fetch path in the engine ({fit.Bursts} decode bursts of 2 calibration runs): one expert lands after {Units.FormatDuration(fit.SoloNs)}, " +
                $"{fit.BurstSize} after {Units.FormatDuration(fit.BurstNs)} → link {Units.FormatBandwidth(bandwidth)}, latency {Units.FormatDuration(latency)} (used)");
        }
        else if (probe is not null)
        {
            (bandwidth, latency) = (probe.BytesPerSecond, probe.LatencyNs);
            AnsiConsole.MarkupLine($"{scheme} fetch path in the engine: too few decode fetches in the calibration runs to fit; using the probe's figures.");
        }
        else
        {
            throw new FabricException($"The kept {scheme} calibration runs hold too few decode fetches to fit the link.");
        }
        // The resident experts the engine computes while a fetch starts beside them run slower (they share the
        // cores with the fetch path); the replay's recorded times hold that, and the slowdown says where.
        var slowdown = FetchPathFit.HitSlowdown(calibrationRuns, model.NumExpertsPerTok) ?? 1;
        AnsiConsole.MarkupLine($"{scheme} resident experts computed beside a starting fetch (calibration runs): {slowdown:0.00}× as long" +
            (hitSlowdownOverride is { } o ? $"; using {o:0.00}× (--hit-slowdown)" : ""));
        slowdown = hitSlowdownOverride ?? slowdown;
        var linked = new Topology.Topology(topology.Name, topology.Nodes,
            [.. topology.Links.Select(l => l.Kind == scheme ? l with { Bandwidth = bandwidth, LatencyNs = (long)latency } : l)], topology.Calibration);
        using var statsDoc = JsonDocument.Parse(await File.ReadAllTextAsync(stats).ConfigureAwait(false));
        var measuredTps = statsDoc.RootElement.GetProperty("decode_tokens_per_second").GetDouble();
        var measuredStall = statsDoc.RootElement.GetProperty("stall_ms").GetDouble() * 1e6;
        var recorded = RoutingTrace.Load(trace);
        var measuredDecodeStall = (double)recorded.Visits.Where(v => v.Step > 0).Sum(v => v.StallNs);
        AnsiConsole.MarkupLine($"{scheme} engine: {statsDoc.RootElement.GetProperty("fetches").GetInt64()} fetches, mean {statsDoc.RootElement.GetProperty("mean_fetch_ms").GetDouble():0.000} ms each " +
            $"(+{statsDoc.RootElement.GetProperty("mean_fetch_queued_ms").GetDouble():0.000} ms queued), compute {statsDoc.RootElement.GetProperty("compute_ms").GetDouble():0} ms, stall {measuredStall / 1e6:0} ms");

        var workload = WorkloadLoader.Resolve(new WorkloadDocument
        {
            Name = $"validate-{scheme}",
            Engines = [new EnginePlacementDocument { Gpu = topology.Nodes.First(n => n.CanCompute).Name }],
            Pool = [topology.Nodes.First(n => n.IsPool && topology.Links.Any(l => l.Kind == scheme && (l.A == n.Id || l.B == n.Id))).Name],
            Routing = new RoutingDocument { Kind = "trace", Trace = trace },
        }, linked, dir, $"validate-{scheme}") with { HitSlowdownBesideFetch = slowdown };
        var result = SimRunner.Run(linked, workload);
        var simTps = result.TotalTokensPerSecond;
        var simStall = (double)result.StallNs;
        var simDecodeStall = simStall - result.Engines.Sum(e => e.PrefillStallNs);
        return new Comparison(measuredTps, simTps, measuredDecodeStall, simDecodeStall, measuredStall, simStall);
    }

    private static FetchTiming[] ReadFetchLog(string statsPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(statsPath));
        return doc.RootElement.GetProperty("fetch_log").Deserialize<FetchTiming[]>(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }) ?? [];
    }
}
