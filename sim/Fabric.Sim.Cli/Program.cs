using Fabric.Cli;
using Fabric.Sim.Cli;
using Spectre.Console;

// Piped or redirected, Spectre would wrap tables at its 80-column default: give it room so that each row stays a line.
if (Console.IsOutputRedirected)
    AnsiConsole.Profile.Width = 400;

var root = new System.CommandLine.RootCommand("fabric-sim: the topology simulator (run, sweep, validate, import-hwloc, import-trace, calibrate).");
foreach (var command in SimCommands.All())
    root.Subcommands.Add(command);
return await FabricCommandLine.RunAsync("fabric-sim", root, args);
