using Fabric.Engine.Device;

namespace Fabric.Engine.Gpu;

/// <summary>
/// Puts the ILGPU backend into the engine's <see cref="DeviceRegistry"/>: the <c>ilgpu-cpu</c> and <c>cuda[:N]</c>
/// device names. A program that lets its user pick one calls <see cref="Register"/> at start-up.
/// </summary>
public static class IlgpuDeviceRegistration
{
    /// <summary>Registers the <c>ilgpu-cpu</c> and <c>cuda</c> prefixes with <see cref="DeviceRegistry"/>; idempotent.</summary>
    public static void Register()
    {
        DeviceRegistry.Register("ilgpu-cpu", (spec, budget) => IlgpuDevice.Open(spec, budget));
        DeviceRegistry.Register("cuda", (spec, budget) =>
        {
            var device = IlgpuDevice.Open(spec, budget);
            if (device.BlasFallbackReason is { } reason)
                Console.Error.WriteLine($"{device.Name}: FP32 projections use Fabric's GEMV kernel, not cuBLAS: {reason}.");
            return device;
        });
    }
}
