using Fabric.Common;
using System.Globalization;

namespace Fabric.Bench;

/// <summary>The options of `./fabric bench transport`.</summary>
internal sealed record TransportBenchmarkOptions(IReadOnlyList<string> Transports, IReadOnlyList<int> Sizes, string? JsonPath, double SecondsPerSize, bool Help)
{
    public const string Usage = """
        usage: fabric bench transport [--transport shm|tcp] [--sizes 4KiB,64KiB,1MiB,16MiB,64MiB] [--seconds S] [--json PATH]

          --transport  which backend to measure (default: both)
          --sizes      read sizes, comma-separated, with B/KiB/MiB suffixes (default: 4KiB,64KiB,1MiB,16MiB,64MiB)
          --seconds    measuring time per size and per side (default: 0.5)
          --json       also write the results as a JSON array to PATH
        """;

    public static bool TryParse(string[] args, out TransportBenchmarkOptions options, out string error)
    {
        options = new TransportBenchmarkOptions(["shm", "tcp"], [4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20], null, 0.5, false);
        error = "";
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (name is "-h" or "--help")
            {
                options = options with { Help = true };
                return true;
            }
            if (i + 1 >= args.Length)
            {
                error = $"{name} needs a value; run 'fabric bench transport --help'.";
                return false;
            }
            var value = args[++i];
            switch (name)
            {
                case "--transport" when value is "shm" or "tcp":
                    options = options with { Transports = [value] };
                    break;
                case "--transport":
                    error = $"'{value}' is not a transport this benchmark measures; use shm or tcp.";
                    return false;
                case "--sizes":
                    var sizes = new List<int>();
                    foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        if (!TryParseSize(part, out var size))
                        {
                            error = $"'{part}' is not a read size; write sizes like 4KiB, 1MiB or 512B, from 1 B to 1 GiB.";
                            return false;
                        }
                        sizes.Add(size);
                    }
                    if (sizes.Count == 0)
                    {
                        error = "--sizes lists no size.";
                        return false;
                    }
                    options = options with { Sizes = sizes };
                    break;
                case "--seconds" when double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds > 0 && seconds <= 60:
                    options = options with { SecondsPerSize = seconds };
                    break;
                case "--seconds":
                    error = $"'{value}' is not a number of seconds between 0 and 60.";
                    return false;
                case "--json":
                    options = options with { JsonPath = value };
                    break;
                default:
                    error = $"'{name}' is not an option of 'fabric bench transport'; run it with --help.";
                    return false;
            }
        }
        return true;
    }

    private static bool TryParseSize(string text, out int size)
    {
        size = 0;
        if (!ByteSize.TryParse(text, out var bytes) || bytes < 1 || bytes > 1L << 30)
            return false;
        size = (int)bytes;
        return true;
    }
}
