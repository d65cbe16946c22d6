using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Fabric.Engine.Runtime;
using Fabric.MemoryPool.Model;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;
using Fabric.Transport;
using Spectre.Console;

namespace Fabric.Sim.Cli;

/// <summary>
/// <c>fabric-sim validate</c>: runs the real engine against a real pool daemon over shm and tcp, replays each recorded
/// routing trace on the calibrated loopback topology, and prints measured against simulated tokens/s and stall.
/// </summary>
internal static class ValidateCommand
{
    public static Command Create()
    {
        var topology = new Option<string>("--topology", "-t") { Description = "the calibrated loopback topology", DefaultValueFactory = _ => "topologies/loopback.yaml" };
        var preset = new Option<string>("--preset") { Description = "model preset for the generated model (tiny, small, medium)", DefaultValueFactory = _ => "small" };
        var tokens = new Option<int>("--tokens") { Description = "tokens each engine run generates (more: steadier figures)", DefaultValueFactory = _ => 128 };
        var fraction = new Option<double>("--resident") { Description = "fraction of experts resident", DefaultValueFactory = _ => 0.25 };
        var keep = new Option<string?>("--keep") { Description = "keep traces and stats in this directory" };
        var hitSlowdown = new Option<double?>("--hit-slowdown") { Description = "use this slowdown of the hits computed beside a fetch instead of calibrating it (1: none); to compare" };
        var replay = new Option<bool>("--replay") { Description = "replay the runs kept in --keep DIR again (no engine runs): to compare simulator changes on the same data" };
        var cmd = new Command("validate", "Record traces with the real engine over shm and tcp, replay them here, and print the error (target within 10%).");
        foreach (var o in new Option[] { topology, preset, tokens, fraction, keep, replay, hitSlowdown })
            cmd.Options.Add(o);
        cmd.SetAction(async (r, ct) => await RunAsync(r.GetValue(topology)!, r.GetValue(preset)!, r.GetValue(tokens), r.GetValue(fraction), r.GetValue(keep), r.GetValue(replay), r.GetValue(hitSlowdown)).ConfigureAwait(false));
        return cmd;
    }

    // The run being predicted and the calibration runs generate from different prompts, so they route differently.
    private const string RecordedPrompt = "1,2,3,4,5,6,7,8";
    private static readonly string[] CalibrationPrompts = ["11,12,13,14,15,16,17,18", "21,22,23,24,25,26,27,28"];

    private static async Task<int> RunAsync(string topologyPath, string preset, int tokens, double resident, string? keep, bool replay, double? hitSlowdownOverride)
    {
        if (replay && keep is null)
            throw new FabricException("--replay replays the runs kept in --keep DIR: name the directory.");
        var topology = TopologyLoader.LoadFile(topologyPath);
        var bin = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, ".."));
        var config = Path.GetFileName(AppContext.BaseDirectory.TrimEnd('/'));
        var engineDll = Path.Combine(bin, "..", "Fabric.Engine.Cli", config, "fabric-engine.dll");
        var poolDll = Path.Combine(bin, "..", "Fabric.Pool", config, "fabric-pool.dll");
        var dir = keep ?? Path.Combine(Path.GetTempPath(), "fabric-sim-validate-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        var shm = "/dev/shm/fabric-sim-validate-" + Guid.NewGuid().ToString("N")[..10];
        try
        {
            var modelDir = Path.Combine(dir, "model");
            var model = ModelPresets.Get(preset);
            ChildProcess? pool = null;
            List<string> endpoints = ["shm://kept", "tcp://kept"];
            if (!replay)
            {
                AnsiConsole.MarkupLine($"generating the {preset} model (router skew 1) in {Markup.Escape(modelDir)}...");
                ModelGenerator.Write(modelDir, model, seed: 7, routerSkew: 1);
                var tokensFile = Path.Combine(dir, "tokens");
                await File.WriteAllTextAsync(tokensFile, "sim:validate\n").ConfigureAwait(false);
                pool = ChildProcess.Start(poolDll, $"serve --model \"{modelDir}\" --listen tcp://127.0.0.1:0 --shm {shm} --tokens \"{tokensFile}\"");
                if (!await pool.WaitForAsync(l => l.Count(x => x.StartsWith("listening ", StringComparison.Ordinal)) >= 2, TimeSpan.FromSeconds(120)).ConfigureAwait(false))
                    throw new FabricException($"fabric-pool did not start listening: {pool.Stderr.Trim()}");
                endpoints = [.. pool.Lines.Where(x => x.StartsWith("listening ", StringComparison.Ordinal)).Select(x => x["listening ".Length..].Trim())];
            }
            await using var poolLifetime = pool;
            var slots = Math.Max(model.NumExpertsPerTok, (int)Math.Round(resident * model.TotalExperts));

            var table = new Table().AddColumns("transport", "measured tok/s", "simulated tok/s", "error", "measured decode stall", "simulated", "error");
            var totals = new List<string>();
            var worst = 0.0;
            foreach (var scheme in new[] { "shm", "tcp" })
            {
                var endpoint = endpoints.FirstOrDefault(e => e.StartsWith(scheme + "://", StringComparison.Ordinal))
                    ?? throw new FabricException($"fabric-pool printed no {scheme} endpoint.");
                async Task RecordAsync(string prompt, string stats, string? trace)
                {
                    await using var engine = ChildProcess.Start(engineDll,
                        $"generate --pool {endpoint} --token sim:validate --prompt-ids {prompt} --max-new-tokens {tokens} --slots {slots} " +
                        $"--policy lru --prefetch none --stats-json \"{stats}\"" + (trace is null ? "" : $" --trace-out \"{trace}\""));
                    var code = await engine.WaitForExitAsync(TimeSpan.FromMinutes(10)).ConfigureAwait(false);
                    if (code != 0)
                        throw new FabricException($"fabric-engine generate over {scheme} failed (exit {code}): {engine.Stderr.Trim()}");
                }

                // The fetch path alone, for comparison (and the fallback); it also warms the pool's serving path, which
                // would otherwise run cold (JIT) under the first engine run over this transport.
                var probe = replay ? null : await FetchPathProbe.MeasureAsync(endpoint, "sim:validate", slots, model.NumExpertsPerTok, rounds: 24).ConfigureAwait(false);
                if (probe is not null)
                {
                    AnsiConsole.MarkupLine($"{scheme} fetch path alone (probe): one {Units.FormatBytes(probe.ExpertBytes)} expert {Units.FormatDuration(probe.SoloNs)}, " +
                        $"{probe.Concurrency} at once {Units.FormatDuration(probe.ConcurrentNs)} → link {Units.FormatBandwidth(probe.BytesPerSecond)}, latency {Units.FormatDuration(probe.LatencyNs)}");
                }

                // Calibrate the link from the engine's own fetch path as the engine drives it — fetches beside its
                // compute, on its thread pool, in a fresh process — with two calibration runs on other prompts just
                // before and just after, never from, the run being predicted.
                var calibration = new[] { Path.Combine(dir, $"calibration-before-{scheme}.json"), Path.Combine(dir, $"calibration-after-{scheme}.json") };
                var trace = Path.Combine(dir, $"trace-{scheme}.jsonl");
                var stats = Path.Combine(dir, $"stats-{scheme}.json");
                if (!replay)
                {
                    AnsiConsole.MarkupLine($"calibrating and recording over {Markup.Escape(endpoint)}...");
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
                // The resident experts the engine computes while a fetch starts beside them run slower (they share the two
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
                var tpsError = (simTps - measuredTps) / measuredTps;
                var stallError = measuredDecodeStall > 0 ? (simDecodeStall - measuredDecodeStall) / measuredDecodeStall : 0;
                worst = Math.Max(worst, Math.Abs(tpsError));
                table.AddRow(scheme, measuredTps.ToString("0.0", CultureInfo.InvariantCulture), simTps.ToString("0.0", CultureInfo.InvariantCulture), Percent(tpsError),
                    Units.FormatDuration(measuredDecodeStall), Units.FormatDuration(simDecodeStall), Percent(stallError));
                totals.Add($"{scheme} stall with the prefill: measured {Units.FormatDuration(measuredStall)}, simulated {Units.FormatDuration(simStall)} " +
                    $"({Percent(measuredStall > 0 ? (simStall - measuredStall) / measuredStall : 0)})");
            }
            AnsiConsole.Write(table);
            foreach (var line in totals)
                AnsiConsole.MarkupLine(line);
            AnsiConsole.MarkupLine(worst <= 0.10
                ? $"[green]tokens/s within {worst:P1} of the real engine (target 10%).[/]"
                : $"[yellow]tokens/s off by up to {worst:P1} (target 10%); the fetch path is calibrated just before and after each run, so this is mostly the machine's load moving between them: re-run on a quieter machine.[/]");
            return 0;
        }
        finally
        {
            if (keep is null)
                Directory.Delete(dir, recursive: true);
            foreach (var stale in Directory.GetFiles("/dev/shm", Path.GetFileName(shm) + "*"))
                File.Delete(stale);
        }
    }

    // Rounded first, so that a tiny negative error prints as +0.0%, not -+0.0%.
    private static string Percent(double fraction) => (Math.Round(fraction, 3) + 0.0).ToString("+0.0%;-0.0%;+0.0%", CultureInfo.InvariantCulture);

    private static FetchTiming[] ReadFetchLog(string statsPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(statsPath));
        return doc.RootElement.GetProperty("fetch_log").Deserialize<FetchTiming[]>(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }) ?? [];
    }
}
