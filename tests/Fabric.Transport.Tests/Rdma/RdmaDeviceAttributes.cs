using Fabric.Transport.Conformance;
using Fabric.Transport.Rdma;

namespace Fabric.Transport.Tests.Rdma;

/// <summary>Skips a backend's conformance class, with the probe's reason, unless this machine has an active RDMA port.</summary>
public sealed class RequiresRdmaDeviceAttribute : BackendRequirementAttribute
{
    public override string? SkipReason => RdmaDevices.Probe() is { IsUsable: false } probe
        ? $"No RDMA device to run rdma:// against: {probe.Reason} (see transport/README.md, RDMA, to create a soft-RoCE rxe device)."
        : null;
}

/// <summary>A test of how rdma:// behaves without a device; skipped, with the reason, on a machine that has one.</summary>
public sealed class NoRdmaDeviceFactAttribute : FactAttribute
{
    public NoRdmaDeviceFactAttribute()
    {
        if (RdmaDevices.Probe() is { IsUsable: true } probe)
            Skip = $"This machine has a usable RDMA device ({probe.Reason}), so the no-device behaviour cannot be observed.";
    }
}
