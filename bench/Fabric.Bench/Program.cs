using Fabric.Bench;
using Fabric.Cli;
using Fabric.Common;
using Fabric.Engine.Gpu;

// Engine runs resolve their device through the engine's device registry; the ILGPU backend adds ilgpu-cpu and cuda.
IlgpuDeviceRegistration.Register();

List<IBenchmark> benchmarks =
[
    new DemoBenchmark(),
    new EngineBenchmark(),
    new GpuCopyBenchmark(),
    new GpuEngineBenchmark(),
    new LoadBenchmark(),
    new PagerBenchmark(),
    new PoolClientsBenchmark(),
    new RdmaBenchmark(),
    new ServeBenchmark(),
    new SimBenchmark(),
    new SoakBenchmark(),
    new TransportBenchmark(),
];
benchmarks.Add(new GpuSuiteBenchmark(benchmarks));

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.WriteLine("usage: fabric bench NAME [options]   (NAME --help for its options)");
    foreach (var b in benchmarks)
        Console.WriteLine($"  {b.Name,-12} {b.Summary}");
    return args.Length == 0 ? ExitCodes.UserError : ExitCodes.Success;
}

var chosen = benchmarks.FirstOrDefault(b => b.Name == args[0]);
if (chosen is null)
{
    Console.Error.WriteLine($"fabric-bench: there is no benchmark named '{args[0]}'; run './fabric bench --help' for the list.");
    return ExitCodes.UserError;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
return await ConsoleErrors.RunAsync("fabric-bench", () => chosen.RunAsync(args[1..], cancel.Token));
