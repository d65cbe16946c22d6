using Fabric.Cli;
using Fabric.Sim.Cli;

var root = new System.CommandLine.RootCommand("fabric-sim: the topology simulator (run, sweep, validate, import-hwloc, calibrate).");
foreach (var command in SimCommands.All())
    root.Subcommands.Add(command);
return await FabricCommandLine.RunAsync("fabric-sim", root, args);
