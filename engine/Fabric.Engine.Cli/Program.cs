using System.CommandLine;
using Fabric.Cli;
using Fabric.Engine.Cli;
using Fabric.Engine.Gpu;

// --device resolves through the engine's device registry: cpu is built in, the ILGPU backend adds ilgpu-cpu and cuda.
IlgpuDeviceRegistration.Register();

var root = new RootCommand("fabric-engine: run a Mixtral MoE model with bounded expert residency, paging experts from a pool.");
root.Subcommands.Add(DevicesCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(MakeModelCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
// serve drains on SIGTERM for its own --drain-timeout; the parser's short termination timeout must not cut it.
return await FabricCommandLine.RunAsync("fabric-engine", root, args, drainingCommands: ["serve"]);
