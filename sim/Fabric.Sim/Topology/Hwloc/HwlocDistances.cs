using System.Globalization;
using System.Xml.Linq;

namespace Fabric.Sim.Topology.Hwloc;

/// <summary>
/// GPU-GPU links from hwloc's bandwidth matrices (<c>distances2</c> / <c>distances2hetero</c> named NVLinkBandwidth,
/// XGMIBandwidth or XeLinkBandwidth; values in MB/s, objects by gp_index). An NVSwitch in a matrix becomes an
/// nvswitch node; other objects (a CPU package on POWER) are left out and said so.
/// </summary>
internal sealed class HwlocDistances(HwlocWalk walk)
{
    public void AddLinks(XElement topology)
    {
        foreach (var matrix in topology.Elements().Where(e => e.Name.LocalName is "distances2" or "distances2hetero"))
        {
            var name = matrix.Attribute("name")?.Value ?? "";
            if (!name.EndsWith("Bandwidth", StringComparison.Ordinal))
                continue;
            var n = int.TryParse(matrix.Attribute("nbobjs")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var nb) ? nb : 0;
            var indexes = Tokens(matrix, "indexes");
            var values = Tokens(matrix, "u64values").Select(v => ulong.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var u) ? u : 0).ToArray();
            if (n < 2 || indexes.Length != n || values.Length != n * n)
            {
                walk.Summary.Skipped.Add($"{name} matrix: malformed ({indexes.Length} indexes, {values.Length} values for {n} objects)");
                continue;
            }
            var kind = name.StartsWith("NVLink", StringComparison.Ordinal) ? "nvlink" : name.StartsWith("XGMI", StringComparison.Ordinal) ? "xgmi" : "xelink";
            var ends = indexes.Select(Resolve).ToArray();
            for (var i = 0; i < n; i++)
            {
                for (var j = i + 1; j < n; j++)
                {
                    var mbps = Math.Max(values[i * n + j], values[j * n + i]);
                    if (mbps == 0)
                        continue;
                    if (ends[i] is null || ends[j] is null)
                    {
                        walk.Summary.Skipped.Add($"{kind} to an object that is neither a GPU nor an NVSwitch (not modelled)");
                        continue;
                    }
                    var gbps = mbps / 1000.0;
                    walk.Link(ends[i]!, ends[j]!, kind, string.Create(CultureInfo.InvariantCulture, $"{gbps:0.###}GB/s"), "700ns");
                    walk.Summary.GpuLinks.Add(string.Create(CultureInfo.InvariantCulture, $"{kind} {gbps:0.#} GB/s"));
                }
            }
        }
    }

    // "OSDev:13" (heterogeneous matrices) or "13" (homogeneous, gp indexing) → the node that object became.
    private string? Resolve(string index)
    {
        var colon = index.IndexOf(':', StringComparison.Ordinal);
        var gpText = colon >= 0 ? index[(colon + 1)..] : index;
        if (!ulong.TryParse(gpText, NumberStyles.None, CultureInfo.InvariantCulture, out var gp))
            return null;
        return walk.NodeForGpIndex(gp);
    }

    private static string[] Tokens(XElement matrix, string child) =>
        matrix.Elements(child).SelectMany(e => e.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToArray();
}
