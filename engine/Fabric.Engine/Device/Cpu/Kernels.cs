using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Fabric.Engine.Device.Cpu;

/// <summary>SIMD kernels over raw pointers: dot products of fp32 activations with F32/F16/BF16 weight rows.</summary>
internal static unsafe class Kernels
{
    /// <summary>Σ x[i]·w[i] over n elements, w in <paramref name="type"/>; <paramref name="scratch"/> holds n floats (F16 only).</summary>
    public static float Dot(float* x, byte* w, WeightType type, int n, float* scratch)
    {
        switch (type)
        {
            case WeightType.F32:
                return TensorPrimitives.Dot(new ReadOnlySpan<float>(x, n), new ReadOnlySpan<float>(w, n));
            case WeightType.BF16:
                return DotBf16(x, (ushort*)w, n);
            default:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w, n), new Span<float>(scratch, n));
                return TensorPrimitives.Dot(new ReadOnlySpan<float>(x, n), new ReadOnlySpan<float>(scratch, n));
        }
    }

    /// <summary>Widens one weight row to fp32.</summary>
    public static void ToSingle(byte* w, WeightType type, int n, float* destination)
    {
        switch (type)
        {
            case WeightType.F32:
                new ReadOnlySpan<float>(w, n).CopyTo(new Span<float>(destination, n));
                break;
            case WeightType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w, n), new Span<float>(destination, n));
                break;
            default:
                var src = (ushort*)w;
                var i = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    for (; i <= n - 16; i += 16)
                    {
                        var v = Vector256.Load(src + i);
                        (Vector256.ShiftLeft(Vector256.WidenLower(v), 16).AsSingle()).Store(destination + i);
                        (Vector256.ShiftLeft(Vector256.WidenUpper(v), 16).AsSingle()).Store(destination + i + 8);
                    }
                }
                for (; i < n; i++)
                    destination[i] = Bf16(src[i]);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Bf16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>
    /// Σ x[i]·w[i] where w holds BF16 values already widened to fp32: bit-identical to the BF16 dot product of the same
    /// row (same accumulators, same order; widening BF16 is exact), for the several-row path of a product.
    /// </summary>
    public static float DotWidenedBf16(float* x, float* w, int n)
    {
        var i = 0;
        var sum = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            var a0 = Vector256<float>.Zero;
            var a1 = Vector256<float>.Zero;
            var a2 = Vector256<float>.Zero;
            var a3 = Vector256<float>.Zero;
            for (; i <= n - 32; i += 32)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i), Vector256.Load(x + i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i + 8), Vector256.Load(x + i + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i + 16), Vector256.Load(x + i + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i + 24), Vector256.Load(x + i + 24), a3);
            }
            sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        for (; i < n; i++)
            sum += x[i] * w[i];
        return sum;
    }

    private static float DotBf16(float* x, ushort* w, int n)
    {
        var i = 0;
        var sum = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            var a0 = Vector256<float>.Zero;
            var a1 = Vector256<float>.Zero;
            var a2 = Vector256<float>.Zero;
            var a3 = Vector256<float>.Zero;
            for (; i <= n - 32; i += 32)
            {
                var v0 = Vector256.Load(w + i);
                var v1 = Vector256.Load(w + i + 16);
                a0 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(Vector256.WidenLower(v0), 16).AsSingle(), Vector256.Load(x + i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(Vector256.WidenUpper(v0), 16).AsSingle(), Vector256.Load(x + i + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(Vector256.WidenLower(v1), 16).AsSingle(), Vector256.Load(x + i + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(Vector256.WidenUpper(v1), 16).AsSingle(), Vector256.Load(x + i + 24), a3);
            }
            sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        for (; i < n; i++)
            sum += x[i] * Bf16(w[i]);
        return sum;
    }
}
