using Fabric.Common;
using Fabric.Engine.Device.Cpu;

namespace Fabric.Engine.Device;

/// <summary>
/// The registry of compute devices: maps a device name ("cpu", "cuda", "cuda:1") to the factory that creates it.
/// "cpu" is built in; a backend in a higher assembly adds its prefixes with <see cref="Register"/> (the ILGPU one
/// through <c>IlgpuDeviceRegistration.Register</c>), which each program calls at start-up.
/// </summary>
public static class DeviceRegistry
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
