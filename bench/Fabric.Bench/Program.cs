using Fabric.Bench;
using Fabric.Transport;

var benchmarks = typeof(IBenchmark).Assembly.GetTypes()
    .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IBenchmark).IsAssignableFrom(t))
    .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
    .OrderBy(b => b.Name, StringComparer.Ordinal)
    .ToList();

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.WriteLine("usage: fabric bench NAME [options]   (NAME --help for its options)");
    foreach (var b in benchmarks)
        Console.WriteLine($"  {b.Name,-12} {b.Summary}");
    return args.Length == 0 ? ConsoleErrors.UserError : 0;
}

var chosen = benchmarks.FirstOrDefault(b => b.Name == args[0]);
if (chosen is null)
{
    Console.Error.WriteLine($"fabric-bench: there is no benchmark named '{args[0]}'; run './fabric bench --help' for the list.");
    return ConsoleErrors.UserError;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
return await ConsoleErrors.RunAsync("fabric-bench", () => chosen.RunAsync(args[1..], cancel.Token));
