using System.CommandLine;
using System.Globalization;
using Fabric.Common;
using Fabric.Model;
using Fabric.Sim.Topology;
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
        var repeat = new Option<int>("--repeat") { Description = "calibrate, record and replay this many times per transport; the verdict is on the median error", DefaultValueFactory = _ => 3 };
        var json = new Option<string?>("--json") { Description = "also write every run's figures and the medians as JSON to PATH" };
        var replay = new Option<bool>("--replay") { Description = "replay the runs kept in --keep DIR again (no engine runs): to compare simulator changes on the same data" };
        var cmd = new Command("validate", "Record traces with the real engine over shm and tcp, replay them here, and print the error (target within 10%).");
        foreach (var o in new Option[] { topology, preset, tokens, fraction, keep, repeat, replay, hitSlowdown, json })
            cmd.Options.Add(o);
        cmd.SetAction(async (r, ct) => await RunAsync(r.GetValue(topology)!, r.GetValue(preset)!, r.GetValue(tokens), r.GetValue(fraction), r.GetValue(keep), r.GetValue(repeat), r.GetValue(replay), r.GetValue(hitSlowdown), r.GetValue(json)).ConfigureAwait(false));
        return cmd;
    }

    private static async Task<int> RunAsync(string topologyPath, string preset, int tokens, double resident, string? keep, int repeat, bool replay, double? hitSlowdownOverride, string? jsonPath)
    {
        if (repeat < 1)
            throw new FabricException($"--repeat {repeat}: give at least 1.");
        if (tokens < 1)
            throw new FabricException($"--tokens {tokens}: give at least 1.");
        if (!(resident is > 0 and <= 1))
            throw new FabricException(string.Create(CultureInfo.InvariantCulture, $"--resident {resident}: give a fraction above 0 and at most 1."));
        if (hitSlowdownOverride is < 1 || (hitSlowdownOverride is { } h && !double.IsFinite(h)))
            throw new FabricException(string.Create(CultureInfo.InvariantCulture, $"--hit-slowdown {hitSlowdownOverride}: give 1 (none) or more."));
        if (replay && keep is null)
            throw new FabricException("--replay replays the runs kept in --keep DIR: name the directory.");
        if (replay)
        {
            // Every run the directory keeps, however many were recorded.
            repeat = 0;
            while (File.Exists(Path.Combine(keep!, $"trace-shm{ValidationRun.Suffix(repeat + 1)}.jsonl")))
                repeat++;
            if (repeat == 0)
                throw new FabricException($"'{keep}' keeps no validate runs (no trace-shm.jsonl).");
        }
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
            var rows = new List<Dictionary<string, object>>();
            var worst = 0.0;
            foreach (var scheme in new[] { "shm", "tcp" })
            {
                var endpoint = endpoints.FirstOrDefault(e => e.StartsWith(scheme + "://", StringComparison.Ordinal))
                    ?? throw new FabricException($"fabric-pool printed no {scheme} endpoint.");
                // The fetch path alone, for comparison (and the fallback); it also warms the pool's serving path, which
                // would otherwise run cold (JIT) under the first engine run over this transport.
                var probe = replay ? null : await FetchPathProbe.MeasureAsync(endpoint, "sim:validate", slots, model.NumExpertsPerTok, rounds: 24).ConfigureAwait(false);
                if (probe is not null)
                {
                    AnsiConsole.MarkupLine($"{scheme} fetch path alone (probe): one {ByteSize.Format(probe.ExpertBytes)} expert {Units.FormatDuration(probe.SoloNs)}, " +
                        $"{probe.Concurrency} at once {Units.FormatDuration(probe.ConcurrentNs)} → link {Units.FormatBandwidth(probe.BytesPerSecond)}, latency {Units.FormatDuration(probe.LatencyNs)}");
                }

                var runs = new List<ValidationRun.Comparison>();
                for (var run = 1; run <= repeat; run++)
                {
                    var c = await ValidationRun.CompareAsync(new ValidationRun.Setup(scheme, endpoint, dir, ValidationRun.Suffix(run), model, slots, tokens,
                        topology, engineDll, replay, probe, hitSlowdownOverride)).ConfigureAwait(false);
                    runs.Add(c);
                    rows.Add(new Dictionary<string, object>
                    {
                        ["transport"] = scheme, ["run"] = run, ["measured_tps"] = c.MeasuredTps, ["simulated_tps"] = c.SimulatedTps, ["tps_error"] = c.TpsError,
                        ["measured_decode_stall_ns"] = c.MeasuredDecodeStall, ["simulated_decode_stall_ns"] = c.SimulatedDecodeStall, ["stall_error"] = c.StallError,
                    });
                    table.AddRow(repeat == 1 ? scheme : $"{scheme} #{run}", c.MeasuredTps.ToString("0.0", CultureInfo.InvariantCulture), c.SimulatedTps.ToString("0.0", CultureInfo.InvariantCulture),
                        Percent(c.TpsError), Units.FormatDuration(c.MeasuredDecodeStall), Units.FormatDuration(c.SimulatedDecodeStall), Percent(c.StallError));
                    totals.Add($"{scheme}{(repeat == 1 ? "" : $" #{run}")} stall with the prefill: measured {Units.FormatDuration(c.MeasuredStall)}, simulated {Units.FormatDuration(c.SimulatedStall)} " +
                        $"({Percent(c.MeasuredStall > 0 ? (c.SimulatedStall - c.MeasuredStall) / c.MeasuredStall : 0)})");
                }
                var tpsMedian = Median(runs.Select(c => c.TpsError));
                if (repeat > 1)
                {
                    table.AddRow($"[bold]{scheme} median[/]", "", "", $"[bold]{Percent(tpsMedian)}[/]", "", "", $"[bold]{Percent(Median(runs.Select(c => c.StallError)))}[/]");
                }
                worst = Math.Max(worst, Math.Abs(tpsMedian));
                rows.Add(new Dictionary<string, object> { ["transport"] = scheme, ["run"] = "median", ["tps_error"] = tpsMedian, ["stall_error"] = Median(runs.Select(c => c.StallError)) });
            }
            AnsiConsole.Write(table);
            if (jsonPath is not null)
                await File.WriteAllTextAsync(jsonPath, System.Text.Json.JsonSerializer.Serialize(rows, new System.Text.Json.JsonSerializerOptions { WriteIndented = true })).ConfigureAwait(false);
            foreach (var line in totals)
                AnsiConsole.MarkupLine(line);
            var what = repeat == 1 ? "tokens/s" : $"the median of {repeat} runs' tokens/s";
            AnsiConsole.MarkupLine(worst <= 0.10
                ? $"[green]{what} within {worst:P1} of the real engine over each transport (target 10%).[/]"
                : $"[yellow]{what} off by up to {worst:P1} (target 10%); the fetch path is calibrated just before and after each run, so this is mostly the machine's load moving between them: re-run on a quieter machine.[/]");
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

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    // Rounded first, so that a tiny negative error prints as +0.0%, not -+0.0%.
    private static string Percent(double fraction) => (Math.Round(fraction, 3) + 0.0).ToString("+0.0%;-0.0%;+0.0%", CultureInfo.InvariantCulture);
}
