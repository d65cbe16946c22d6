using System.CommandLine;
using System.Reflection;
using Fabric.Engine.Cli;

// Every class here with a public static `Command Create()` is a subcommand (generate, make-model, devices...),
// so parts add commands by adding a file.
var root = new RootCommand("fabric-engine: run a Mixtral MoE model with bounded expert residency, paging experts from a pool.");
foreach (var type in typeof(GenerateCommand).Assembly.GetTypes().Where(t => t.Name.EndsWith("Command", StringComparison.Ordinal)).OrderBy(t => t.Name, StringComparer.Ordinal))
{
    if (type.GetMethod("Create", BindingFlags.Public | BindingFlags.Static, Type.EmptyTypes) is { } create && create.ReturnType == typeof(Command))
        root.Subcommands.Add((Command)create.Invoke(null, null)!);
}
return await root.Parse(args).InvokeAsync();
