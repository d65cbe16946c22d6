namespace Fabric.Engine.Gpu;

/// <summary>How a weight tensor is stored in device memory. Activations are always FP32.</summary>
public enum WeightType
{
    /// <summary>IEEE single precision, 4 bytes an element.</summary>
    F32 = 0,

    /// <summary>IEEE half precision, 2 bytes an element.</summary>
    F16 = 1,

    /// <summary>bfloat16 (the top half of an FP32), 2 bytes an element.</summary>
    BF16 = 2,
}

/// <summary>Sizes of the weight types.</summary>
public static class WeightTypes
{
    /// <summary>Bytes one element of <paramref name="type"/> takes.</summary>
    public static int ElementBytes(this WeightType type) => type == WeightType.F32 ? 4 : 2;
}
