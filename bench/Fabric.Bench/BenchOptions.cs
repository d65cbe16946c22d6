using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Fabric.Common;

namespace Fabric.Bench;

/// <summary>
/// The <c>--name value</c> options of one benchmark, checked up front: an unknown option, a missing value or one out
/// of range is one sentence and exit 2 (a <see cref="FabricException"/>), never a parse error from deep inside.
/// </summary>
internal sealed class BenchOptions
{
    private const StringSplitOptions ListItems = StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries;

    private readonly string _bench;
    private readonly Dictionary<string, string> _values = [];
    private readonly HashSet<string> _flags = [];

    /// <param name="bench">The benchmark's name, for messages.</param>
    /// <param name="args">Its arguments.</param>
    /// <param name="options">The options that take a value.</param>
    /// <param name="flags">The options that stand alone (--help is always one).</param>
    public BenchOptions(string bench, string[] args, string[] options, string[]? flags = null)
    {
        _bench = bench;
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (name is "--help" or "-h" || (flags?.Contains(name) ?? false))
                _flags.Add(name is "-h" ? "--help" : name);
            else if (!options.Contains(name))
                throw new FabricException($"'{name}' is not an option of bench {bench}; see --help.");
            else if (i + 1 >= args.Length)
                throw new FabricException($"{name} needs a value.");
            else
                _values[name] = args[++i];
        }
    }

    public bool Has(string flag) => _flags.Contains(flag);

    public string? Text(string name) => _values.GetValueOrDefault(name);

    /// <summary>
    /// The whole number after <paramref name="name"/>, from <paramref name="min"/> to <paramref name="max"/>; the
    /// fallback when absent.
    /// </summary>
    public int Int(string name, int fallback, int min = 1, int max = int.MaxValue)
    {
        if (Text(name) is not { } text)
            return fallback;
        return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max ? v
            : throw Refuse(name, text, max == int.MaxValue ? $"give a whole number of at least {min}" : $"give a whole number from {min} to {max}");
    }

    /// <summary>The comma-separated whole numbers after <paramref name="name"/>, each at least 1; null when absent.</summary>
    public int[]? Ints(string name)
    {
        if (Text(name) is not { } text)
            return null;
        var items = text.Split(',', ListItems);
        var values = new int[items.Length];
        var valid = items.Length > 0;
        for (var i = 0; i < items.Length && valid; i++)
            valid = int.TryParse(items[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i]) && values[i] >= 1;
        return valid ? values : throw Refuse(name, text, "give whole numbers of at least 1, separated by commas");
    }

    /// <summary>
    /// The number after <paramref name="name"/>, above 0 and at most <paramref name="max"/>; the fallback when absent.
    /// </summary>
    public double Positive(string name, double fallback, double max = double.PositiveInfinity)
    {
        if (Text(name) is not { } text)
            return fallback;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && v <= max && double.IsFinite(v) ? v
            : throw Refuse(name, text, double.IsPositiveInfinity(max) ? "give a number above 0" : string.Create(CultureInfo.InvariantCulture, $"give a number above 0 and at most {max}"));
    }

    /// <summary>The comma-separated numbers after <paramref name="name"/>, each 0 or more; the fallback when absent.</summary>
    public double[] Numbers(string name, double[] fallback)
    {
        if (Text(name) is not { } text)
            return fallback;
        var items = text.Split(',', ListItems);
        var values = new double[items.Length];
        var valid = items.Length > 0;
        for (var i = 0; i < items.Length && valid; i++)
            valid = double.TryParse(items[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) && double.IsFinite(values[i]) && values[i] >= 0;
        return valid ? values : throw Refuse(name, text, "give numbers of 0 or more, separated by commas");
    }

    /// <summary>
    /// The comma-separated byte sizes after <paramref name="name"/> (4KiB, 1MiB, 512B: <see cref="ByteSize"/>), each
    /// from <paramref name="min"/> to <paramref name="max"/> bytes; the fallback when absent.
    /// </summary>
    public int[] Sizes(string name, int[] fallback, int min, int max)
    {
        if (Text(name) is not { } text)
            return fallback;
        var items = text.Split(',', ListItems);
        var values = new int[items.Length];
        var valid = items.Length > 0;
        for (var i = 0; i < items.Length && valid; i++)
        {
            valid = ByteSize.TryParse(items[i], out var bytes) && bytes >= min && bytes <= max;
            values[i] = (int)bytes;
        }
        return valid ? values
            : throw Refuse(name, text, $"give sizes such as 4KiB, 1MiB or 512B, from {ByteSize.FormatExact(min)} to {ByteSize.FormatExact(max)}, separated by commas");
    }

    /// <summary>The word after <paramref name="name"/>, one of <paramref name="allowed"/>; the fallback when absent.</summary>
    [return: NotNullIfNotNull(nameof(fallback))]
    public string? Choice(string name, string? fallback, params string[] allowed)
    {
        if (Text(name) is not { } text)
            return fallback;
        return allowed.Contains(text) ? text : throw Refuse(name, text, $"give one of {string.Join(", ", allowed)}");
    }

    /// <summary>
    /// The comma-separated words after <paramref name="name"/>, each one of <paramref name="allowed"/>; the fallback
    /// when absent.
    /// </summary>
    public string[] Choices(string name, string[] fallback, params string[] allowed)
    {
        if (Text(name) is not { } text)
            return fallback;
        var items = text.Split(',', ListItems);
        return items.Length > 0 && items.All(allowed.Contains) ? items
            : throw Refuse(name, text, $"give some of {string.Join(", ", allowed)}, separated by commas");
    }

    private FabricException Refuse(string name, string text, string ask) => new($"{name} '{text}' for bench {_bench}: {ask}.");
}
