using System.Globalization;

namespace Fabric.Engine.Device;

/// <summary>Parses and prints byte sizes such as <c>512MiB</c>, <c>2GB</c>, <c>1048576</c>.</summary>
public static class ByteSize
{
    /// <summary>Parses a size; a malformed one throws <see cref="FormatException"/> with one sentence.</summary>
    public static long Parse(string text)
    {
        var s = text.Trim();
        var end = 0;
        while (end < s.Length && (char.IsAsciiDigit(s[end]) || s[end] == '.'))
            end++;
        if (end == 0 || !double.TryParse(s[..end], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            throw new FormatException($"'{text}' is not a size; write bytes or a number with a unit such as 512MiB or 2GB.");
        var multiplier = s[end..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 1L,
            "K" or "KB" => 1000L,
            "KIB" => 1L << 10,
            "M" or "MB" => 1000L * 1000,
            "MIB" => 1L << 20,
            "G" or "GB" => 1000L * 1000 * 1000,
            "GIB" => 1L << 30,
            "T" or "TB" => 1000L * 1000 * 1000 * 1000,
            "TIB" => 1L << 40,
            _ => throw new FormatException($"'{text}' has an unknown unit; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB."),
        };
        return checked((long)Math.Round(value * multiplier));
    }

    /// <summary>Formats bytes with a binary unit, e.g. "1.50 GiB".</summary>
    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / (double)(1L << 10):0.0} KiB",
        _ => $"{bytes} B",
    };
}
