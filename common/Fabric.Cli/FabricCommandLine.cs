using System.CommandLine;
using Fabric.Common;

namespace Fabric.Cli;

/// <summary>
/// Runs a program's root command: a command line that does not parse is one sentence on stderr and exit code 2 (never
/// System.CommandLine's error list and help text); <c>--log-level</c> is set up for every command; the command's own
/// errors go through <see cref="ConsoleErrors"/>.
/// </summary>
public static class FabricCommandLine
{
    /// <param name="program">The program's name, for messages.</param>
    /// <param name="root">Its root command.</param>
    /// <param name="args">The command line.</param>
    /// <param name="drainingCommands">Commands that handle SIGTERM themselves (a server draining for its own deadline):
    /// the parser's short termination timeout is not applied to them.</param>
    public static async Task<int> RunAsync(string program, RootCommand root, string[] args, IReadOnlyCollection<string>? drainingCommands = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        root.Options.Add(FabricLogging.LevelOption);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // System.CommandLine's own messages may run to several lines (suggestions); the first line is the sentence.
            var first = parsed.Errors[0].Message.Split('\n')[0].Trim().TrimEnd('.');
            await Console.Error.WriteLineAsync($"{program}: {first}; see {program} --help.").ConfigureAwait(false);
            return ExitCodes.UserError;
        }
        FabricLogging.Configure(parsed.GetValue(FabricLogging.LevelOption));
        try
        {
            var invocation = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
            if (drainingCommands?.Contains(parsed.CommandResult.Command.Name) == true)
                invocation.ProcessTerminationTimeout = null;
            return await ConsoleErrors.RunAsync(program, () => parsed.InvokeAsync(invocation)).ConfigureAwait(false);
        }
        finally
        {
            // Flushes the console logger's queue before the process exits.
            FabricLogging.Factory.Dispose();
        }
    }
}
