using Fabric.Sim.Topology;

namespace Fabric.Sim.Compute;

/// <summary>The roofline model: a kernel takes as long as the slower of its compute and its memory traffic.</summary>
public static class Roofline
{
    /// <summary>Nanoseconds for <paramref name="flops"/> FLOPs touching <paramref name="bytes"/> bytes of device memory on <paramref name="device"/>.</summary>
    public static long TimeNs(TopologyNode device, double flops, double bytes)
    {
        var compute = device.PeakFlops > 0 ? flops / device.PeakFlops : 0;
        var memory = device.MemoryBandwidth > 0 ? bytes / device.MemoryBandwidth : 0;
        return (long)Math.Ceiling(Math.Max(compute, memory) * 1e9);
    }
}
