using System.CommandLine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Fabric.Cli;

/// <summary>
/// The daemons' logs: Microsoft.Extensions.Logging to a console logger on stderr, one line per event, at the level
/// <c>--log-level</c> gives (trace, debug, information, warning, error, critical, none).
/// </summary>
public static class FabricLogging
{
    /// <summary><c>--log-level LEVEL</c>, on every command of a program (<see cref="FabricCommandLine"/> adds it).</summary>
    public static Option<LogLevel> LevelOption { get; } = new("--log-level")
    {
        Description = "Least severe log events written to stderr: trace, debug, information, warning, error, critical or none.",
        DefaultValueFactory = _ => LogLevel.Information,
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (Enum.TryParse<LogLevel>(text, ignoreCase: true, out var level) && Enum.IsDefined(level) && !int.TryParse(text, out _))
                return level;
            result.AddError($"--log-level '{text}' is not a log level; give trace, debug, information, warning, error, critical or none.");
            return LogLevel.Information;
        },
        HelpName = "trace|debug|information|warning|error|critical|none",
        Recursive = true,
    };

    /// <summary>The loggers of this process, at the level parsed from the command line; no logging until then.</summary>
    public static ILoggerFactory Factory { get; private set; } = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;

    /// <summary>Makes <see cref="Factory"/> a console logger on stderr at <paramref name="level"/>.</summary>
    public static void Configure(LogLevel level)
    {
        var previous = Factory;
        Factory = LoggerFactory.Create(builder => AddConsole(builder, level));
        previous.Dispose();
    }

    /// <summary>Adds the one-line stderr console logger at <paramref name="level"/> to <paramref name="builder"/>.</summary>
    public static void AddConsole(ILoggingBuilder builder, LogLevel level)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.SetMinimumLevel(level);
        builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
            o.ColorBehavior = LoggerColorBehavior.Disabled;
        });
    }
}
