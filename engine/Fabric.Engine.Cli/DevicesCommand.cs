using System.CommandLine;
using System.Globalization;
using Fabric.Cli;
using Fabric.Engine.Gpu;

namespace Fabric.Engine.Cli;

/// <summary><c>fabric-engine devices</c>: the accelerators the ILGPU backend can open here.</summary>
public static class DevicesCommand
{
    public static Command Create()
    {
        var command = new Command("devices", "List the accelerators found: CUDA devices with their memory, and ILGPU's CPU accelerator.");
        command.SetAction((ParseResult _, CancellationToken _) => ConsoleErrors.RunAsync("fabric-engine", () => Task.FromResult(Run(Console.Out))));
        return command;
    }

    /// <summary>Writes the table to <paramref name="output"/>; returns the exit code.</summary>
    public static int Run(TextWriter output)
    {
        var devices = IlgpuAccelerators.List();
        output.WriteLine($"{"--device",-12} {"memory",10}  name (details)");
        foreach (var device in devices)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{device.Spec,-12} {device.MemoryBytes / (double)(1L << 30),6:0.0} GiB  {device.Name} ({device.Detail})"));
        if (IlgpuAccelerators.CudaAbsenceReason() is { } reason)
            output.WriteLine($"{reason}; --device cuda is unavailable, --device ilgpu-cpu runs the same kernels on the host.");
        return 0;
    }
}
