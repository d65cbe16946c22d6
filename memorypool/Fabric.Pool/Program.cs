using System.CommandLine;
using Fabric.Cli;
using Fabric.Pool;

var root = new RootCommand("fabric-pool: the Fabric memory pool — serves a checkpoint's experts to engines over tcp and shm.");
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(LsCommand.Create());
return await FabricCommandLine.RunAsync("fabric-pool", root, args);
