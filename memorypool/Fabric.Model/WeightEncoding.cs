using System.Runtime.InteropServices;

namespace Fabric.Model;

/// <summary>Converts float32 values to and from the checkpoint dtypes.</summary>
public static class WeightEncoding
{
    /// <summary>Rounds a float to bfloat16 (round to nearest even; NaN stays NaN).</summary>
    public static ushort ToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
            return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>Widens a bfloat16 to float.</summary>
    public static float FromBFloat16(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    /// <summary>Encodes <paramref name="values"/> into <paramref name="destination"/> in <paramref name="dtype"/>.</summary>
    public static void Encode(ReadOnlySpan<float> values, TensorDtype dtype, Span<byte> destination)
    {
        switch (dtype)
        {
            case TensorDtype.F32:
                MemoryMarshal.AsBytes(values).CopyTo(destination);
                break;
            case TensorDtype.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(destination);
                for (var i = 0; i < values.Length; i++)
                    halves[i] = (Half)values[i];
                break;
            default:
                var shorts = MemoryMarshal.Cast<byte, ushort>(destination);
                for (var i = 0; i < values.Length; i++)
                    shorts[i] = ToBFloat16(values[i]);
                break;
        }
    }

    /// <summary>Decodes <paramref name="source"/> (elements of <paramref name="dtype"/>) into floats.</summary>
    public static void Decode(ReadOnlySpan<byte> source, TensorDtype dtype, Span<float> values)
    {
        switch (dtype)
        {
            case TensorDtype.F32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(values);
                break;
            case TensorDtype.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(source);
                for (var i = 0; i < values.Length; i++)
                    values[i] = (float)halves[i];
                break;
            default:
                var shorts = MemoryMarshal.Cast<byte, ushort>(source);
                for (var i = 0; i < values.Length; i++)
                    values[i] = FromBFloat16(shorts[i]);
                break;
        }
    }
}
