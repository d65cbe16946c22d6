using System.Buffers.Binary;
using System.Text.Json;

namespace Fabric.Model;

/// <summary>One tensor to be written: name, dtype and shape (row-major).</summary>
public sealed record TensorSpec(string Name, TensorDtype Dtype, long[] Shape)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    public long Bytes => Elements * Dtype.ByteSize();
}

/// <summary>
/// Writes a .safetensors file in one pass: the header (every tensor's offsets known up front, padded with spaces to
/// 8 bytes) then each tensor's bytes in order, streamed from a caller's fill function so nothing is held whole.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>The size of the staging chunk a tensor is produced in, in bytes.</summary>
    public const int ChunkBytes = 8 << 20;

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/>. <paramref name="fill"/>(tensor index, first element,
    /// destination) writes consecutive elements of that tensor, encoded in its dtype, into the destination span
    /// (whose length is a whole number of elements). <paramref name="progress"/> gets bytes written so far.
    /// </summary>
    public static void Write(string path, IReadOnlyList<TensorSpec> tensors, IReadOnlyDictionary<string, string>? metadata,
        Action<int, long, Memory<byte>> fill, IProgress<long>? progress = null)
    {
        var header = BuildHeader(tensors, metadata);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);

        var chunk = GC.AllocateUninitializedArray<byte>(ChunkBytes, pinned: true);
        long written = 0;
        for (var t = 0; t < tensors.Count; t++)
        {
            var spec = tensors[t];
            var elementSize = spec.Dtype.ByteSize();
            var perChunk = ChunkBytes / elementSize;
            for (long first = 0; first < spec.Elements; first += perChunk)
            {
                var count = (int)Math.Min(perChunk, spec.Elements - first);
                var memory = chunk.AsMemory(0, count * elementSize);
                fill(t, first, memory);
                stream.Write(memory.Span);
                written += memory.Length;
                progress?.Report(written);
            }
        }
    }

    private static byte[] BuildHeader(IReadOnlyList<TensorSpec> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                    json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.Dtype.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (var d in t.Shape)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Bytes;
            }
            json.WriteEndObject();
        }
        var length = (int)buffer.Length;
        var padded = (length + 7) & ~7;
        var header = new byte[padded];
        buffer.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }
}
