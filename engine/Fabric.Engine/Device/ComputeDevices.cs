using Fabric.Engine.Device.Cpu;
using Fabric.Common;

namespace Fabric.Engine.Device;

/// <summary>
/// The one place that maps a <c>--device</c> name ("cpu", "cuda", "cuda:1") to a device. "cpu" is built in; a
/// backend in a higher assembly (Fabric.Engine.Gpu) registers its prefix with <see cref="Register"/>.
/// </summary>
public static class ComputeDevices
{
    /// <summary>Creates a device from the full spec (e.g. "cuda:1") with a budget in bytes.</summary>
    public delegate IComputeDevice Factory(string spec, long budgetBytes);

    private static readonly Dictionary<string, Factory> Factories = new(StringComparer.OrdinalIgnoreCase)
    {
        ["cpu"] = (_, budget) => new CpuDevice(budget),
    };

    private static readonly Lock Gate = new();

    /// <summary>Installs (or replaces) the factory for specs whose part before ':' is <paramref name="prefix"/>.</summary>
    public static void Register(string prefix, Factory factory)
    {
        lock (Gate)
            Factories[prefix] = factory;
    }

    /// <summary>Creates the device named by <paramref name="spec"/>; an unknown one throws <see cref="FabricException"/> listing the known ones.</summary>
    public static IComputeDevice Create(string spec, long budgetBytes)
    {
        var prefix = spec.Split(':', 2)[0];
        Factory? factory;
        string known;
        lock (Gate)
        {
            Factories.TryGetValue(prefix, out factory);
            known = string.Join(", ", Factories.Keys);
        }
        return factory is null
            ? throw new FabricException($"There is no compute device '{spec}' in this build; known: {known}.")
            : factory(spec, budgetBytes);
    }
}
