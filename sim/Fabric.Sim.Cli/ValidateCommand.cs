using System.CommandLine;
using System.Globalization;
using System.Text.Json;
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
        var tokens = new Option<int>("--tokens") { Description = "tokens to generate", DefaultValueFactory = _ => 48 };
        var fraction = new Option<double>("--resident") { Description = "fraction of experts resident", DefaultValueFactory = _ => 0.25 };
        var keep = new Option<string?>("--keep") { Description = "keep traces and stats in this directory" };
        var cmd = new Command("validate", "Record traces with the real engine over shm and tcp, replay them here, and print the error (target within 10%).");
        foreach (var o in new Option[] { topology, preset, tokens, fraction, keep })
            cmd.Options.Add(o);
        cmd.SetAction(async (r, ct) => await RunAsync(r.GetValue(topology)!, r.GetValue(preset)!, r.GetValue(tokens), r.GetValue(fraction), r.GetValue(keep)).ConfigureAwait(false));
        return cmd;
    }

    private static async Task<int> RunAsync(string topologyPath, string preset, int tokens, double resident, string? keep)
    {
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
            AnsiConsole.MarkupLine($"generating the {preset} model (router skew 1) in {Markup.Escape(modelDir)}...");
            ModelGenerator.Write(modelDir, model, seed: 7, routerSkew: 1);
            var tokensFile = Path.Combine(dir, "tokens");
            await File.WriteAllTextAsync(tokensFile, "sim:validate\n").ConfigureAwait(false);
            await using var pool = ChildProcess.Start(poolDll, $"serve --model \"{modelDir}\" --listen tcp://127.0.0.1:0 --shm {shm} --tokens \"{tokensFile}\"");
            if (!await pool.WaitForAsync(l => l.Count(x => x.StartsWith("listening ", StringComparison.Ordinal)) >= 2, TimeSpan.FromSeconds(120)).ConfigureAwait(false))
                throw new FabricException($"fabric-pool did not start listening: {pool.Stderr.Trim()}");
            var endpoints = pool.Lines.Where(x => x.StartsWith("listening ", StringComparison.Ordinal)).Select(x => x["listening ".Length..].Trim()).ToList();
            var slots = Math.Max(model.NumExpertsPerTok, (int)Math.Round(resident * model.TotalExperts));

            var table = new Table().AddColumns("transport", "measured tok/s", "simulated tok/s", "error", "measured stall", "simulated stall", "error");
            var worst = 0.0;
            foreach (var scheme in new[] { "shm", "tcp" })
            {
                var endpoint = endpoints.FirstOrDefault(e => e.StartsWith(scheme + "://", StringComparison.Ordinal))
                    ?? throw new FabricException($"fabric-pool printed no {scheme} endpoint.");
                // Calibrate the link from the engine's own fetch path (read + verify into slot-sized buffers, the engine's
                // concurrency), measured just before and just after — never from — the run being predicted.
                var before = await FetchPathProbe.MeasureAsync(endpoint, "sim:validate", slots, model.NumExpertsPerTok, rounds: 24).ConfigureAwait(false);
                var trace = Path.Combine(dir, $"trace-{scheme}.jsonl");
                var stats = Path.Combine(dir, $"stats-{scheme}.json");
                AnsiConsole.MarkupLine($"recording over {Markup.Escape(endpoint)}...");
                await using (var engine = ChildProcess.Start(engineDll,
                    $"generate --pool {endpoint} --token sim:validate --prompt-ids 1,2,3,4,5,6,7,8 --max-new-tokens {tokens} --slots {slots} " +
                    $"--policy lru --prefetch none --stats-json \"{stats}\" --trace-out \"{trace}\""))
                {
                    var code = await engine.WaitForExitAsync(TimeSpan.FromMinutes(10)).ConfigureAwait(false);
                    if (code != 0)
                        throw new FabricException($"fabric-engine generate over {scheme} failed (exit {code}): {engine.Stderr.Trim()}");
                }
                var after = await FetchPathProbe.MeasureAsync(endpoint, "sim:validate", slots, model.NumExpertsPerTok, rounds: 24).ConfigureAwait(false);
                var probe = FetchPathProbe.Combine(before, after);
                AnsiConsole.MarkupLine($"{scheme} fetch path: one {Units.FormatBytes(probe.ExpertBytes)} expert {Units.FormatDuration(probe.SoloNs)}, " +
                    $"{probe.Concurrency} at once {Units.FormatDuration(probe.ConcurrentNs)} (before {Units.FormatDuration(before.SoloNs)}, after {Units.FormatDuration(after.SoloNs)} for one) " +
                    $"→ link {Units.FormatBandwidth(probe.BytesPerSecond)}, latency {Units.FormatDuration(probe.LatencyNs)}");
                var linked = new Topology.Topology(topology.Name, topology.Nodes,
                    [.. topology.Links.Select(l => l.Kind == scheme ? l with { Bandwidth = probe.BytesPerSecond, LatencyNs = (long)probe.LatencyNs } : l)], topology.Calibration);
                using var statsDoc = JsonDocument.Parse(await File.ReadAllTextAsync(stats).ConfigureAwait(false));
                var measuredTps = statsDoc.RootElement.GetProperty("decode_tokens_per_second").GetDouble();
                var measuredStall = statsDoc.RootElement.GetProperty("stall_ms").GetDouble() * 1e6;
                AnsiConsole.MarkupLine($"{scheme} engine: {statsDoc.RootElement.GetProperty("fetches").GetInt64()} fetches, mean {statsDoc.RootElement.GetProperty("mean_fetch_ms").GetDouble():0.000} ms each " +
                    $"(+{statsDoc.RootElement.GetProperty("mean_fetch_queued_ms").GetDouble():0.000} ms queued), compute {statsDoc.RootElement.GetProperty("compute_ms").GetDouble():0} ms, stall {measuredStall / 1e6:0} ms");

                var workload = WorkloadLoader.Resolve(new WorkloadDocument
                {
                    Name = $"validate-{scheme}",
                    Engines = [new EnginePlacementDocument { Gpu = topology.Nodes.First(n => n.CanCompute).Name }],
                    Pool = [topology.Nodes.First(n => n.IsPool && topology.Links.Any(l => l.Kind == scheme && (l.A == n.Id || l.B == n.Id))).Name],
                    Routing = new RoutingDocument { Kind = "trace", Trace = trace },
                }, linked, dir, $"validate-{scheme}");
                var result = SimRunner.Run(linked, workload);
                var simTps = result.TotalTokensPerSecond;
                var simStall = (double)result.StallNs;
                var tpsError = (simTps - measuredTps) / measuredTps;
                var stallError = measuredStall > 0 ? (simStall - measuredStall) / measuredStall : 0;
                worst = Math.Max(worst, Math.Abs(tpsError));
                table.AddRow(scheme, measuredTps.ToString("0.0", CultureInfo.InvariantCulture), simTps.ToString("0.0", CultureInfo.InvariantCulture), $"{tpsError:+0.0%;-0.0%}",
                    Units.FormatDuration(measuredStall), Units.FormatDuration(simStall), $"{stallError:+0.0%;-0.0%}");
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine(worst <= 0.10
                ? $"[green]tokens/s within {worst:P1} of the real engine (target 10%).[/]"
                : $"[yellow]tokens/s off by up to {worst:P1} (target 10%); the fetch path is probed just before and after each run, so this is mostly the machine's load moving between them: re-run on a quiet machine.[/]");
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
}
