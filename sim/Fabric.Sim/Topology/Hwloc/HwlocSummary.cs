using System.Globalization;

namespace Fabric.Sim.Topology.Hwloc;

/// <summary>What an import found and what it left out, for the screen that follows <c>sim import-hwloc</c>.</summary>
public sealed class HwlocSummary
{
    /// <summary>"hwloc 2.x XML" or "hwloc 3.x XML".</summary>
    public string Format { get; set; } = "";
    public List<string> Cpus { get; } = [];
    public List<string> Gpus { get; } = [];
    public List<string> Switches { get; } = [];
    public List<string> GpuLinks { get; } = [];
    public List<string> Memory { get; } = [];
    public List<string> Nics { get; } = [];

    /// <summary>What was not turned into a node, each with the reason.</summary>
    public List<string> Skipped { get; } = [];

    /// <summary>Figures that are defaults rather than the machine's own.</summary>
    public List<string> Assumed { get; } = [];

    public List<string> Warnings { get; } = [];

    public int GpuCount { get; set; }

    /// <summary>Memory nodes made (DAX views of memory counted elsewhere are listed in <see cref="Memory"/> but not here).</summary>
    public int MemoryNodes { get; set; }
    public long PoolBytes { get; set; }

    /// <summary>The summary as lines of at most about 100 characters: counts first, then the items grouped.</summary>
    public IEnumerable<string> Lines()
    {
        yield return $"{Format}: GPUs {GpuCount}, switches {Switches.Count}, memory nodes {MemoryNodes} ({FormatBytes(PoolBytes)} of pool memory), NICs {Nics.Count}";
        foreach (var (label, items) in new[] { ("cpus", Cpus), ("gpus", Gpus), ("switches", Switches), ("gpu links", GpuLinks), ("memory", Memory), ("nics", Nics), ("skipped", Skipped), ("assumed", Assumed) })
            foreach (var line in Group(items))
                yield return $"  {label,-10} {line}";
        foreach (var w in Warnings)
            yield return $"warning: {w}";
    }

    // Identical entries collapse into "N × entry" so that a 16-GPU server fits on a screen.
    private static IEnumerable<string> Group(List<string> items) =>
        items.GroupBy(i => i, StringComparer.Ordinal).Select(g => g.Count() > 1 ? $"{g.Count()} × {g.Key}" : g.Key);

    public static string FormatBytes(long bytes) =>
        bytes >= 1L << 40 ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 40):0.##} TiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.##} GiB");
}
