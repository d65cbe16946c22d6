using System.CommandLine;

namespace Fabric.Sim.Cli;

/// <summary>Every subcommand of fabric-sim.</summary>
internal static class SimCommands
{
    public static IEnumerable<Command> All() =>
    [
        RunCommand.Create(),
        SweepCommand.Create(),
        ValidateCommand.Create(),
        TopologyCommands.ImportHwloc(),
        TopologyCommands.Calibrate(),
        TraceCommands.ImportTrace(),
    ];
}
