using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Fabric.Model;
using MessagePack;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Pool.Protocol;

/// <summary>
/// The identity of a checkpoint's contents, as one 64-bit number: an xxHash64 (seed 0) over its config (MessagePack)
/// and, for every routed expert tensor and every dense tensor in catalog order, its name, dtype, shape and length
/// and three 4 KiB samples of its bytes (start, middle, end). Two checkpoints with the same shapes but other
/// weights (another seed, another fine-tune) differ; computing it reads a few KiB per tensor, not the weights.
/// A bank image records it, pools register it in etcd, and engines refuse a pool whose fingerprint differs from
/// the others serving the same model name.
/// </summary>
public static class ModelFingerprint
{
    /// <summary>Bytes hashed from each sample point of a tensor.</summary>
    public const int SampleBytes = 4096;

    /// <summary>The fingerprint of <paramref name="checkpoint"/>; reads the samples from its files.</summary>
    public static ulong Of(Checkpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var hash = new XxHash64();
        hash.Append(MessagePackSerializer.Serialize(checkpoint.Config, MessagePackSerializerOptions.Standard));
        var handles = new Dictionary<string, SafeFileHandle>(StringComparer.Ordinal);
        try
        {
            var sample = new byte[SampleBytes];
            foreach (var expert in checkpoint.Experts)
            {
                Append(hash, expert.Gate, handles, sample);
                Append(hash, expert.Up, handles, sample);
                Append(hash, expert.Down, handles, sample);
            }
            foreach (var tensor in checkpoint.Dense)
                Append(hash, tensor, handles, sample);
        }
        finally
        {
            foreach (var handle in handles.Values)
                handle.Dispose();
        }
        return hash.GetCurrentHashAsUInt64();
    }

    /// <summary>The fingerprint as it is written in text (registrations, messages): 16 lower-case hex digits.</summary>
    public static string Format(ulong fingerprint) => fingerprint.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    private static void Append(XxHash64 hash, TensorEntry tensor, Dictionary<string, SafeFileHandle> handles, byte[] sample)
    {
        hash.Append(Encoding.UTF8.GetBytes(tensor.Name));
        Span<byte> numbers = stackalloc byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(numbers, (long)tensor.Dtype);
        BinaryPrimitives.WriteInt64LittleEndian(numbers[8..], tensor.Length);
        hash.Append(numbers);
        foreach (var dimension in tensor.Shape)
        {
            BinaryPrimitives.WriteInt64LittleEndian(numbers, dimension);
            hash.Append(numbers[..8]);
        }
        if (!handles.TryGetValue(tensor.File, out var handle))
            handles[tensor.File] = handle = File.OpenHandle(tensor.File, FileMode.Open, FileAccess.Read, FileShare.Read);
        var length = (int)Math.Min(SampleBytes, tensor.Length);
        foreach (var start in new[] { 0, (tensor.Length - length) / 2, tensor.Length - length })
        {
            var read = RandomAccess.Read(handle, sample.AsSpan(0, length), tensor.Offset + start);
            if (read != length)
                throw new CheckpointException($"{tensor.File}: tensor {tensor.Name} ends early; the file is truncated.");
            hash.Append(sample.AsSpan(0, length));
        }
    }
}
