using System.Text.Json;
using Fabric.Common;
using Fabric.Engine.Paging;

namespace Fabric.Engine.Runtime;

/// <summary>Reads a routing trace written by <see cref="RoutingTraceWriter"/>.</summary>
public static class RoutingTraceReader
{
    /// <summary>
    /// The pager's access sequence of the recorded run (each route line is one visit: its distinct experts ascending),
    /// which <see cref="BeladyPolicy"/> needs. A malformed line throws <see cref="FabricException"/> naming the file and line.
    /// </summary>
    public static List<ExpertKey> ReadAccessSequence(string path)
    {
        if (!File.Exists(path))
            throw new FabricException($"The routing trace {path} does not exist; record one first from the same run.");
        var visits = new List<(int, IEnumerable<int>)>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
                continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                if (root.GetProperty("kind").GetString() != "route")
                    continue;
                var layer = root.GetProperty("layer").GetInt32();
                var experts = new List<int>();
                foreach (var position in root.GetProperty("experts").EnumerateArray())
                {
                    foreach (var e in position.EnumerateArray())
                        experts.Add(e.GetInt32());
                }
                visits.Add((layer, experts));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new FabricException($"{path} line {lineNumber} is not a routing-trace record: {e.Message}");
            }
        }
        return BeladyPolicy.AccessSequence(visits);
    }
}
