using Fabric.Engine.Device;
using ILGPU;

namespace Fabric.Engine.Gpu.Kernels;

/// <summary>
/// A weight tensor in device memory as kernels see it: one of a 16-bit view (F16 or BF16 bits) and an FP32 view is
/// set, and <see cref="Load"/> returns the element as FP32. Kernels accumulate in FP32 whatever the storage.
/// </summary>
public readonly struct WeightView
{
    public WeightView(ArrayView<ushort> bits16, ArrayView<float> single, int kind)
    {
        Bits16 = bits16;
        Single = single;
        Kind = kind;
    }

    public readonly ArrayView<ushort> Bits16;
    public readonly ArrayView<float> Single;

    /// <summary>A <see cref="WeightType"/> as an int (kernels take only blittable fields).</summary>
    public readonly int Kind;

    /// <summary>Views <paramref name="raw"/> (the tensor's bytes, little-endian) as a weight of <paramref name="type"/>.</summary>
    public static WeightView Of(ArrayView<byte> raw, WeightType type)
    {
        int size = type.Size();
        if (((IContiguousArrayView)raw).IndexInBytes % size != 0)
            throw new ArgumentException($"A {type} weight must start on a multiple of {size} bytes.", nameof(raw));
        return type switch
        {
            WeightType.F32 => new WeightView(ArrayView<ushort>.Empty, raw.Cast<float>(), (int)type),
            _ => new WeightView(raw.Cast<ushort>(), ArrayView<float>.Empty, (int)type),
        };
    }

    /// <summary>Views FP32 device memory as a weight.</summary>
    public static WeightView Of(ArrayView<float> single) => new(ArrayView<ushort>.Empty, single, (int)WeightType.F32);

    /// <summary>Element <paramref name="index"/> as FP32.</summary>
    public float Load(long index) => Kind switch
    {
        (int)WeightType.F32 => Single[index],
        (int)WeightType.BF16 => Bf16ToSingle(Bits16[index]),
        _ => HalfToSingle(Bits16[index]),
    };

    /// <summary>bfloat16 bits to FP32: the bits are the top half of the FP32.</summary>
    public static float Bf16ToSingle(ushort bits) => Interop.IntAsFloat((uint)bits << 16);

    /// <summary>IEEE half bits to FP32, subnormals, infinities and NaN included.</summary>
    public static float HalfToSingle(ushort bits)
    {
        uint sign = (uint)(bits & 0x8000) << 16;
        int exponent = (bits >> 10) & 0x1F;
        uint mantissa = (uint)(bits & 0x3FF);
        if (exponent == 0)
        {
            float subnormal = mantissa * (1f / 16777216f);
            return sign != 0 ? -subnormal : subnormal;
        }
        if (exponent == 31)
            return Interop.IntAsFloat(sign | 0x7F800000u | (mantissa << 13));
        return Interop.IntAsFloat(sign | ((uint)(exponent + 112) << 23) | (mantissa << 13));
    }
}
