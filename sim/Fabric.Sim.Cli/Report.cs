using Fabric.Common;
using Fabric.Sim.Network;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;
using Spectre.Console;

namespace Fabric.Sim.Cli;

/// <summary>The human table of a run.</summary>
internal static class Report
{
    public static void Print(SimResult r, Workload w)
    {
        var m = w.Model;
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(r.Workload)}[/] on [bold]{Markup.Escape(r.Topology)}[/]: " +
            $"{m.NumHiddenLayers} layers x {m.NumLocalExperts} experts (top-{m.NumExpertsPerTok}, {ByteSize.Format(m.ExpertBytes)} each), " +
            $"{r.Engines.Count} engine(s), batch {w.Batch}, {r.Slots} slots ({100.0 * r.Slots / m.TotalExperts:0.#}% resident), " +
            $"policy {r.Policy}, prefetch {r.Prefetch}{(r.Predictor.Length > 0 ? $" (predictor: {r.Predictor})" : "")}");
        AnsiConsole.MarkupLine($"[grey]routing: {Markup.Escape(w.RoutingDescription)}[/]");
        if (r.Sharing == SharingNames.Fifo)
            AnsiConsole.MarkupLine("[grey]links: first come, first served (fifo), an approximation of max-min[/]");

        var engines = new Table().AddColumns("engine", "tokens/s", "hit rate", "stall", "compute", "fetched", "prefetch prec.");
        foreach (var e in r.Engines.Take(16))
        {
            engines.AddRow(Markup.Escape(e.Device), $"{e.TokensPerSecond:0.0}", $"{e.HitRate:P1}", Units.FormatDuration(e.StallNs),
                Units.FormatDuration(e.ComputeNs), ByteSize.Format(e.BytesFetched), e.Prefetches > 0 ? $"{e.PrefetchPrecision:P0}" : "-");
        }
        if (r.Engines.Count > 16)
            engines.AddRow($"... {r.Engines.Count - 16} more", "", "", "", "", "", "");
        AnsiConsole.Write(engines);

        AnsiConsole.MarkupLine($"total [bold]{r.TotalTokensPerSecond:0.0} tokens/s[/] ({r.Tokens} tokens), per-token latency " +
            $"p50 [bold]{Units.FormatDuration(r.TokenLatencyPercentile(50))}[/] p99 [bold]{Units.FormatDuration(r.TokenLatencyPercentile(99))}[/], " +
            $"hit rate [bold]{r.HitRate:P1}[/], stall {Units.FormatDuration(r.StallNs)} (summed over engines), fetched {ByteSize.Format(r.BytesFetched)}");

        var links = new Table().AddColumns("busiest links", "kind", "bandwidth", "carried", "utilisation");
        foreach (var c in r.Channels.Take(8))
            links.AddRow(Markup.Escape(c.Name), c.Kind, Units.FormatBandwidth(c.Bandwidth), ByteSize.Format(c.BytesCarried), $"{c.Utilisation:P1}");
        AnsiConsole.Write(links);
        var sharing = r.Sharing == SharingNames.MaxMin
            ? $"; {r.Reallocations:N0} share recomputations over {r.FlowsReallocated / (double)Math.Max(1, r.Reallocations):0.0} flows each"
            : "";
        var threads = r.Threads > 1 ? $" on {r.Threads} threads" : "";
        AnsiConsole.MarkupLine($"[grey]simulated {Units.FormatDuration(r.MakespanNs)} in {r.WallSeconds:0.00} s wall{threads} ({r.Events:N0} events, {r.Events / Math.Max(r.WallSeconds, 1e-9):N0}/s{sharing})[/]");
    }
}
