using System.Globalization;
using System.Text.Json;
using Fabric.Sim.Topology;

namespace Fabric.Sim.Workloads;

/// <summary>Reads per-layer expert popularity counts: <c>{"0": {"0": 25281, "1": 20360, ...}, "1": {...}}</c>.</summary>
public static class ExpertCounts
{
    /// <summary>Counts indexed [layer][expert].</summary>
    public static double[][] Load(string path)
    {
        if (!File.Exists(path))
            throw new TopologyException($"The expert counts file '{path}' does not exist.");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var layers = new SortedDictionary<int, double[]>();
            foreach (var layer in doc.RootElement.EnumerateObject())
            {
                var entries = layer.Value.EnumerateObject()
                    .Select(e => (Expert: int.Parse(e.Name, CultureInfo.InvariantCulture), Count: e.Value.GetDouble()))
                    .ToList();
                var row = new double[entries.Max(e => e.Expert) + 1];
                foreach (var (expert, count) in entries)
                    row[expert] = count;
                layers[int.Parse(layer.Name, CultureInfo.InvariantCulture)] = row;
            }
            if (layers.Count == 0)
                throw new TopologyException($"'{path}' holds no layers.");
            return [.. layers.Values];
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new TopologyException($"'{path}' is not a counts file of the form {{\"layer\": {{\"expert\": count}}}}: {e.Message.Split('.')[0]}.");
        }
    }
}
