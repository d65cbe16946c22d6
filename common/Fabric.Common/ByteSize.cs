using System.Globalization;

namespace Fabric.Common;

/// <summary>
/// The one parser and formatter of byte sizes: <c>512MiB</c>, <c>2GB</c>, <c>1048576</c> in; <c>1.5 GiB</c> out.
/// Units are case-insensitive; K/M/G/T and KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024.
/// </summary>
public static class ByteSize
{
    /// <summary>Parses a size; a malformed one throws <see cref="FormatException"/> with one sentence.</summary>
    public static long Parse(string text) =>
        TryParse(text, out var bytes, out var error) ? bytes : throw new FormatException(error);

    /// <summary>Parses a size of zero or more bytes; false for anything else.</summary>
    public static bool TryParse(string? text, out long bytes) => TryParse(text, out bytes, out _);

    /// <summary>Parses a size; on failure <paramref name="error"/> is one sentence saying why.</summary>
    public static bool TryParse(string? text, out long bytes, out string error)
    {
        bytes = 0;
        error = "";
        var s = (text ?? "").Trim();
        var end = 0;
        while (end < s.Length && (char.IsAsciiDigit(s[end]) || s[end] == '.'))
            end++;
        if (end == 0 || !double.TryParse(s[..end], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            error = $"'{text}' is not a size; write bytes or a number with a unit such as 512MiB or 2GB.";
            return false;
        }
        long? multiplier = s[end..].Trim().ToUpperInvariant() switch
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
            _ => null,
        };
        if (multiplier is null)
        {
            error = $"'{text}' has an unknown unit; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB.";
            return false;
        }
        var total = value * multiplier.Value;
        if (total >= long.MaxValue)
        {
            error = $"'{text}' is larger than any size Fabric can hold.";
            return false;
        }
        bytes = (long)Math.Round(total);
        return true;
    }

    /// <summary>Formats bytes with a binary unit and up to two decimals: "1.5 GiB", "336 MiB", "512 B".</summary>
    public static string Format(double bytes) => bytes switch
    {
        >= 1L << 40 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1L << 40):0.##} TiB"),
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1L << 30):0.##} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1L << 20):0.##} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1L << 10):0.##} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes:0} B"),
    };

    /// <summary>
    /// Formats an exact size without spaces, as a command line takes it back: "4KiB", "64MiB", "1GiB", "1000B".
    /// </summary>
    public static string FormatExact(long bytes) =>
        bytes >= 1L << 30 && bytes % (1L << 30) == 0 ? $"{bytes >> 30}GiB"
        : bytes >= 1L << 20 && bytes % (1L << 20) == 0 ? $"{bytes >> 20}MiB"
        : bytes >= 1L << 10 && bytes % (1L << 10) == 0 ? $"{bytes >> 10}KiB"
        : $"{bytes}B";
}
