using System.Globalization;

namespace Fabric.Common;

/// <summary>
/// The one parser of durations a person writes: <c>500ns</c>, <c>1.5us</c> (or <c>µs</c>), <c>20ms</c>, <c>10s</c>,
/// <c>2m</c>. What a bare number means is the caller's choice (a topology file's latencies are ns, a timeout is seconds).
/// </summary>
public static class DurationText
{
    // Longest suffix first, so that "ms" is not read as "s" and "m" comes last.
    private static readonly (string Suffix, double Nanoseconds)[] Suffixes =
    [
        ("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9),
    ];

    /// <summary>
    /// The nanoseconds <paramref name="text"/> says, a bare number counting <paramref name="bareUnitNs"/> ns each;
    /// false for anything that is not a finite duration of zero or more.
    /// </summary>
    public static bool TryParseNanoseconds(string? text, double bareUnitNs, out double nanoseconds)
    {
        nanoseconds = 0;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var t = text.Trim();
        var unit = bareUnitNs;
        foreach (var (suffix, ns) in Suffixes)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal))
            {
                t = t[..^suffix.Length].TrimEnd();
                unit = ns;
                break;
            }
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value) || value < 0)
            return false;
        nanoseconds = value * unit;
        return double.IsFinite(nanoseconds);
    }
}
