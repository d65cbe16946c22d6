using Fabric.Common;

namespace Fabric.Engine.Gpu;

/// <summary>The device asked for does not exist here (no CUDA driver, no such ordinal) or cannot hold what was asked.</summary>
public sealed class GpuUnavailableException : FabricException
{
    public GpuUnavailableException(string message) : base(message) { }
    public GpuUnavailableException(string message, Exception inner) : base(message, inner) { }
}
