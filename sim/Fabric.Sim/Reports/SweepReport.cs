using System.Globalization;
using System.Net;
using System.Text;
using Fabric.Sim.Run;

namespace Fabric.Sim.Reports;

/// <summary>One point of a sweep: the settings varied and the result.</summary>
public sealed record SweepPoint(string Topology, string Policy, string Prefetch, int Slots, double ResidentFraction, SimResult Result);

/// <summary>Writes a sweep as CSV and as one self-contained HTML page with SVG charts (ScottPlot).</summary>
public static class SweepReport
{
    public static string Csv(IReadOnlyList<SweepPoint> points)
    {
        var sb = new StringBuilder("topology,policy,prefetch,slots,resident_fraction,tokens_per_second,token_p50_ms,token_p99_ms,hit_rate,stall_seconds,bytes_fetched,busiest_link,busiest_utilisation,sharing,predictor\n");
        foreach (var p in points)
        {
            var r = p.Result;
            var busiest = r.Channels.FirstOrDefault();
            sb.Append(CultureInfo.InvariantCulture, $"{p.Topology},{p.Policy},{p.Prefetch},{p.Slots},{p.ResidentFraction:0.####},{r.TotalTokensPerSecond:0.###},")
              .Append(CultureInfo.InvariantCulture, $"{r.TokenLatencyPercentile(50) / 1e6:0.###},{r.TokenLatencyPercentile(99) / 1e6:0.###},{r.HitRate:0.####},{r.StallNs / 1e9:0.####},{r.BytesFetched},")
              .Append(CultureInfo.InvariantCulture, $"\"{busiest?.Name}\",{busiest?.Utilisation ?? 0:0.####},{r.Sharing},{r.Predictor}\n");
        }
        return sb.ToString();
    }

    public static string Html(IReadOnlyList<SweepPoint> points, string title)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(WebUtility.HtmlEncode(title)).Append("</title>\n")
          .Append("<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;font-size:13px}")
          .Append("td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}td:first-child,td:nth-child(2),td:nth-child(3),td:nth-child(4){text-align:left}")
          .Append(".charts{display:flex;flex-wrap:wrap;gap:12px}</style></head><body>\n")
          .Append("<h1>").Append(WebUtility.HtmlEncode(title)).Append("</h1>\n")
          .Append("<p>Each line is one policy and prefetch mode (and sharing model, where the sweep varies it); x is expert slots per engine. Tokens/s is decode throughput summed over engines; ")
          .Append("stall is the time engines waited for expert fetches, summed over engines.</p>\n");
        if (points.Any(p => p.Result.Sharing == Network.SharingNames.Fifo))
            sb.Append("<p>Points marked fifo modelled the links first come, first served: an approximation of max-min fair sharing, within a few percent ")
              .Append("on the shipped topologies (sweep with <code>--sharing max-min,fifo</code> to see its error on these).</p>\n");
        foreach (var topology in points.Select(p => p.Topology).Distinct())
        {
            var mine = points.Where(p => p.Topology == topology).ToList();
            sb.Append("<h2>").Append(WebUtility.HtmlEncode(topology)).Append("</h2>\n<div class=\"charts\">\n");
            sb.Append(Chart(mine, "tokens/s", p => p.Result.TotalTokensPerSecond)).Append('\n');
            sb.Append(Chart(mine, "hit rate", p => p.Result.HitRate)).Append('\n');
            sb.Append(Chart(mine, "stall (s)", p => p.Result.StallNs / 1e9)).Append('\n');
            sb.Append(Chart(mine, "p99 token latency (ms)", p => p.Result.TokenLatencyPercentile(99) / 1e6)).Append('\n');
            sb.Append("</div>\n");
        }
        sb.Append("<h2>All points</h2>\n<table><tr><th>topology</th><th>policy</th><th>prefetch</th><th>sharing</th><th>slots</th><th>resident</th><th>tokens/s</th>")
          .Append("<th>p50 ms</th><th>p99 ms</th><th>hit rate</th><th>stall s</th><th>busiest link</th><th>util.</th></tr>\n");
        foreach (var p in points)
        {
            var r = p.Result;
            var busiest = r.Channels.FirstOrDefault();
            sb.Append(CultureInfo.InvariantCulture,
                $"<tr><td>{WebUtility.HtmlEncode(p.Topology)}</td><td>{p.Policy}</td><td>{p.Prefetch}{(r.Predictor.Length > 0 ? $" ({r.Predictor})" : "")}</td><td>{r.Sharing}</td><td>{p.Slots}</td><td>{p.ResidentFraction:P1}</td>" +
                $"<td>{r.TotalTokensPerSecond:0.0}</td><td>{r.TokenLatencyPercentile(50) / 1e6:0.00}</td><td>{r.TokenLatencyPercentile(99) / 1e6:0.00}</td>" +
                $"<td>{r.HitRate:P1}</td><td>{r.StallNs / 1e9:0.000}</td><td>{WebUtility.HtmlEncode(busiest?.Name ?? "-")}</td><td>{busiest?.Utilisation ?? 0:P0}</td></tr>\n");
        }
        sb.Append("</table>\n</body></html>\n");
        return sb.ToString();
    }

    private static string Chart(List<SweepPoint> points, string metric, Func<SweepPoint, double> value)
    {
        var plot = new ScottPlot.Plot();
        var bySharing = points.Select(p => p.Result.Sharing).Distinct().Count() > 1;
        foreach (var series in points.GroupBy(p => $"{p.Policy} / {p.Prefetch}" + (p.Result.Predictor.Length > 0 ? $" ({p.Result.Predictor})" : "") + (bySharing ? $" / {p.Result.Sharing}" : "")))
        {
            var ordered = series.OrderBy(p => p.Slots).ToList();
            var scatter = plot.Add.Scatter(ordered.Select(p => (double)p.Slots).ToArray(), ordered.Select(value).ToArray());
            scatter.LegendText = series.Key;
        }
        plot.Title(metric);
        plot.XLabel("expert slots per engine");
        plot.YLabel(metric);
        plot.ShowLegend();
        return plot.GetSvgHtml(520, 360);
    }
}
