using System.Globalization;
using Fabric.Common;

namespace Fabric.Engine.Gpu;

/// <summary>Which ILGPU accelerator runs the engine's kernels.</summary>
public enum AcceleratorKind
{
    /// <summary>ILGPU's CPU accelerator: the GPU kernels run on host threads (tests, machines without a GPU).</summary>
    IlgpuCpu,

    /// <summary>An NVIDIA GPU through ILGPU's CUDA accelerator (driver API).</summary>
    Cuda,
}

/// <summary>A parsed <c>--device</c> value for the ILGPU backend: <c>ilgpu-cpu</c> or <c>cuda[:N]</c>.</summary>
public readonly record struct AcceleratorSpec(AcceleratorKind Kind, int Ordinal)
{
    /// <summary>The <c>--device</c> values this backend accepts, for help texts.</summary>
    public const string Forms = "ilgpu-cpu, cuda or cuda:N";

    /// <summary>True when <paramref name="text"/> names an ILGPU device (the engine's own <c>cpu</c> device is not one).</summary>
    public static bool IsIlgpuDevice(string text) =>
        text.Equals("ilgpu-cpu", StringComparison.OrdinalIgnoreCase) || text.StartsWith("cuda", StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses <c>ilgpu-cpu</c>, <c>cuda</c> (device 0) or <c>cuda:N</c>; anything else is one clear sentence.</summary>
    public static AcceleratorSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var value = text.Trim();
        if (value.Equals("ilgpu-cpu", StringComparison.OrdinalIgnoreCase))
            return new AcceleratorSpec(AcceleratorKind.IlgpuCpu, 0);
        if (value.Equals("cuda", StringComparison.OrdinalIgnoreCase))
            return new AcceleratorSpec(AcceleratorKind.Cuda, 0);
        if (value.StartsWith("cuda:", StringComparison.OrdinalIgnoreCase)
            && int.TryParse(value.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var ordinal))
            return new AcceleratorSpec(AcceleratorKind.Cuda, ordinal);
        throw new FabricException($"The device '{text}' is not one of {Forms}.");
    }

    public override string ToString() => Kind == AcceleratorKind.IlgpuCpu ? "ilgpu-cpu" : $"cuda:{Ordinal}";
}
