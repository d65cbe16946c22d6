using Fabric.Engine.Device;

namespace Fabric.Engine.Gpu;

/// <summary>Puts the ILGPU backend into the engine's device registry: <c>--device ilgpu-cpu</c> and <c>--device cuda[:N]</c>.</summary>
public static class IlgpuDevices
{
    /// <summary>Registers the <c>ilgpu-cpu</c> and <c>cuda</c> prefixes with <see cref="ComputeDevices"/>; idempotent.</summary>
    public static void Register()
    {
        ComputeDevices.Register("ilgpu-cpu", (spec, budget) => IlgpuDevice.Open(spec, budget));
        ComputeDevices.Register("cuda", (spec, budget) => IlgpuDevice.Open(spec, budget));
    }
}
