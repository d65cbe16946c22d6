namespace Fabric.Engine.Device;

/// <summary>The storage type of weights on the device. Activations are always fp32; accumulation is fp32.</summary>
public enum WeightType : byte
{
    F32 = 0,
    F16 = 1,
    BF16 = 2,
}

public static class WeightTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this WeightType type) => type == WeightType.F32 ? 4 : 2;

    /// <summary>Parses a safetensors dtype name ("F32", "F16", "BF16").</summary>
    public static WeightType Parse(string dtype) => dtype.ToUpperInvariant() switch
    {
        "F32" or "FLOAT32" => WeightType.F32,
        "F16" or "FLOAT16" => WeightType.F16,
        "BF16" or "BFLOAT16" => WeightType.BF16,
        _ => throw new ArgumentException($"The engine does not compute with dtype '{dtype}'; it takes F32, F16 and BF16.", nameof(dtype)),
    };
}
