using System.Globalization;
using Fabric.Common;

namespace Fabric.Sim.Topology;

/// <summary>
/// Parses the quantities topology and workload files carry beside sizes (<see cref="ByteSize"/>): bandwidths ("64GB/s", "400Gb/s"),
/// durations (<see cref="DurationText"/>) and rates ("989TFLOP/s"). A bare number means the base unit (bytes, GB/s, ns, FLOP/s).
/// </summary>
public static class Units
{
    // Bytes per second; lower-case "b" is bits.
    private static readonly (string Suffix, double Factor)[] BandwidthSuffixes =
    [
        ("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("KB/s", 1e3), ("B/s", 1),
        ("GiB/s", 1024d * 1024 * 1024), ("MiB/s", 1024d * 1024),
        ("Tb/s", 1e12 / 8), ("Gb/s", 1e9 / 8), ("Mb/s", 1e6 / 8), ("Gbps", 1e9 / 8), ("GbE", 1e9 / 8),
    ];

    private static readonly (string Suffix, double Factor)[] FlopSuffixes =
    [
        ("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6), ("FLOP/s", 1),
    ];

    /// <summary>Bytes per second, from "64GB/s", "400Gb/s" or a bare number of GB/s.</summary>
    public static bool TryParseBandwidth(string? text, out double bytesPerSecond) =>
        TryParse(text, BandwidthSuffixes, 1e9, out bytesPerSecond) && bytesPerSecond > 0;

    /// <summary>Nanoseconds, from "500ns", "1.5us" or a bare number of ns.</summary>
    public static bool TryParseDuration(string? text, out long nanoseconds)
    {
        nanoseconds = 0;
        if (!DurationText.TryParseNanoseconds(text, 1, out var value) || value > long.MaxValue)
            return false;
        nanoseconds = (long)Math.Round(value);
        return true;
    }

    /// <summary>FLOP per second, from "989TFLOP/s" or a bare number of FLOP/s.</summary>
    public static bool TryParseFlops(string? text, out double flops) =>
        TryParse(text, FlopSuffixes, 1, out flops) && flops > 0;

    /// <summary>"63.0 GB/s" style text for reports.</summary>
    public static string FormatBandwidth(double bytesPerSecond) =>
        bytesPerSecond >= 1e12 ? $"{bytesPerSecond / 1e12:0.##} TB/s" : $"{bytesPerSecond / 1e9:0.##} GB/s";

    /// <summary>"1.5 us" style text for reports.</summary>
    public static string FormatDuration(double nanoseconds) =>
        nanoseconds >= 1e9 ? $"{nanoseconds / 1e9:0.###} s"
        : nanoseconds >= 1e6 ? $"{nanoseconds / 1e6:0.###} ms"
        : nanoseconds >= 1e3 ? $"{nanoseconds / 1e3:0.###} us"
        : $"{nanoseconds:0} ns";

    private static bool TryParse(string? text, (string Suffix, double Factor)[] suffixes, double bareFactor, out double value)
    {
        value = 0;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var t = text.Trim();
        var factor = bareFactor;
        foreach (var (suffix, f) in suffixes)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal))
            {
                t = t[..^suffix.Length].TrimEnd();
                factor = f;
                break;
            }
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || double.IsNaN(number) || double.IsInfinity(number))
            return false;
        value = number * factor;
        return true;
    }
}
