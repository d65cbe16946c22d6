using System.Globalization;
using Fabric.Common;

namespace Fabric.Bench;

/// <summary>
/// The <c>--name value</c> options of one benchmark, checked up front: an unknown option, a missing value or one out
/// of range is one sentence and exit 2 (a <see cref="FabricException"/>), never a parse error from deep inside.
/// </summary>
internal sealed class BenchOptions
{
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

    /// <summary>The whole number after <paramref name="name"/>, at least <paramref name="min"/>; the fallback when absent.</summary>
    public int Int(string name, int fallback, int min = 1)
    {
        if (Text(name) is not { } text)
            return fallback;
        return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && v >= min ? v
            : throw new FabricException($"{name} '{text}' for bench {_bench}: give a whole number of at least {min}.");
    }

    /// <summary>The comma-separated whole numbers after <paramref name="name"/>, each at least 1; null when absent.</summary>
    public int[]? Ints(string name)
    {
        if (Text(name) is not { } text)
            return null;
        var items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new int[items.Length];
        var valid = items.Length > 0;
        for (var i = 0; i < items.Length && valid; i++)
            valid = int.TryParse(items[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i]) && values[i] >= 1;
        return valid ? values : throw new FabricException($"{name} '{text}' for bench {_bench}: give whole numbers of at least 1, separated by commas.");
    }

    /// <summary>The number after <paramref name="name"/>, above 0; the fallback when absent.</summary>
    public double Positive(string name, double fallback)
    {
        if (Text(name) is not { } text)
            return fallback;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && double.IsFinite(v) ? v
            : throw new FabricException($"{name} '{text}' for bench {_bench}: give a number above 0.");
    }
}
