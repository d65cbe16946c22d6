using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Fabric.Sim.Topology;

/// <summary>
/// Regenerates a topology's <c>calibration:</c> block from the JSON of <c>./fabric bench transport --json</c>. The
/// reader is tolerant of the exact shape: it looks for objects that name a transport ("transport", "backend" or
/// "scheme") and carry a bandwidth (a property whose name contains "gb" and "s", e.g. "gbps", "bandwidth_gb_s") and
/// optionally a latency ("latency_us", "latency_ns", "p50_us"). Per transport it keeps the largest bandwidth (the
/// large-read figure) and the smallest latency (the small-read figure).
/// </summary>
public static class Calibrator
{
    /// <summary>Measured link parameters per transport name (bytes/s, ns).</summary>
    public sealed record Measurement(string Transport, double Bandwidth, long LatencyNs);

    public static IReadOnlyList<Measurement> ReadBenchJson(string path)
    {
        if (!File.Exists(path))
            throw new TopologyException($"The benchmark file '{path}' does not exist; make it with `./fabric bench transport --json {path}`.");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new TopologyException($"'{path}' is not JSON ({e.Message.Split('.')[0]}).");
        }
        var found = new Dictionary<string, (double Bw, long Lat)>(StringComparer.Ordinal);
        using (doc)
            Visit(doc.RootElement, null, found);
        if (found.Count == 0)
            throw new TopologyException($"'{path}' holds no transport measurements (objects with a transport name and a GB/s figure).");
        return found.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new Measurement(kv.Key, kv.Value.Bw, kv.Value.Lat)).ToList();
    }

    private static void Visit(JsonElement e, string? inheritedTransport, Dictionary<string, (double Bw, long Lat)> found)
    {
        if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in e.EnumerateArray())
                Visit(item, inheritedTransport, found);
            return;
        }
        if (e.ValueKind != JsonValueKind.Object)
            return;
        string? transport = inheritedTransport;
        double bw = 0;
        long lat = 0;
        foreach (var p in e.EnumerateObject())
        {
            var n = p.Name.ToLowerInvariant();
            if (p.Value.ValueKind == JsonValueKind.String && n is "transport" or "backend" or "scheme")
                transport = p.Value.GetString()!.Split(':')[0];
            else if (p.Value.ValueKind == JsonValueKind.Number && !n.Contains("baseline") && !n.Contains("ratio"))
            {
                var v = p.Value.GetDouble();
                if (n.Contains("gb") && (n.Contains("s") || n.Contains("bandwidth")) && !n.Contains("bytes") && v > 0)
                    bw = Math.Max(bw, v * (n.Contains("gbit") || n.Contains("gbps_bits") ? 1e9 / 8 : 1e9));
                else if (n.Contains("latency") || n.StartsWith("p50", StringComparison.Ordinal))
                {
                    var ns = n.EndsWith("_ns", StringComparison.Ordinal) ? v : n.EndsWith("_ms", StringComparison.Ordinal) ? v * 1e6 : v * 1e3;
                    if (ns > 0)
                        lat = lat == 0 ? (long)ns : Math.Min(lat, (long)ns);
                }
            }
        }
        if (transport is not null && (bw > 0 || lat > 0))
        {
            found.TryGetValue(transport, out var prev);
            found[transport] = (Math.Max(prev.Bw, bw), prev.Lat == 0 ? lat : lat == 0 ? prev.Lat : Math.Min(prev.Lat, lat));
        }
        foreach (var p in e.EnumerateObject())
        {
            if (p.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
            {
                // {"shm": {...}} names the transport by key.
                var keyTransport = p.Name is "shm" or "tcp" or "rdma" or "sim" ? p.Name : transport;
                Visit(p.Value, keyTransport, found);
            }
        }
    }

    /// <summary>
    /// Replaces (or appends) the top-level <c>calibration:</c> block of <paramref name="yaml"/>, keeping every other
    /// line (and comment) as it was. Entries not measured keep their old values.
    /// </summary>
    public static string Rewrite(string yaml, IReadOnlyList<Measurement> measurements, string source, DateOnly date)
    {
        var doc = TopologyLoader.Parse(yaml, "topology");
        var links = doc.Calibration?.Links ?? [];
        foreach (var m in measurements)
        {
            links.TryGetValue(m.Transport, out var old);
            links[m.Transport] = new CalibratedLinkDocument
            {
                Bandwidth = m.Bandwidth > 0 ? string.Create(CultureInfo.InvariantCulture, $"{m.Bandwidth / 1e9:0.###}GB/s") : old?.Bandwidth,
                Latency = m.LatencyNs > 0 ? string.Create(CultureInfo.InvariantCulture, $"{m.LatencyNs}ns") : old?.Latency,
            };
        }
        var block = new StringBuilder();
        block.Append("calibration:\n");
        block.Append("  source: \"").Append(source.Replace("\"", "'", StringComparison.Ordinal)).Append("\"\n");
        block.Append("  date: \"").Append(date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)).Append("\"\n");
        block.Append("  links:\n");
        foreach (var (name, l) in links.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            block.Append("    ").Append(name).Append(":\n");
            if (l.Bandwidth is not null)
                block.Append("      bandwidth: ").Append(l.Bandwidth).Append('\n');
            if (l.Latency is not null)
                block.Append("      latency: ").Append(l.Latency).Append('\n');
        }

        var lines = yaml.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').ToList();
        var start = lines.FindIndex(l => l.StartsWith("calibration:", StringComparison.Ordinal));
        if (start < 0)
            return yaml.TrimEnd('\n') + "\n" + block;
        var end = start + 1;
        while (end < lines.Count && (lines[end].Length == 0 || lines[end][0] is ' ' or '#'))
            end++;
        lines.RemoveRange(start, end - start);
        lines.Insert(start, block.ToString().TrimEnd('\n'));
        return string.Join('\n', lines);
    }
}
