using System.Buffers.Binary;
using System.Text.Json;

namespace Fabric.Model;

/// <summary>
/// The header of one .safetensors file: an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {...}}</c>), then the
/// data, whose offsets count from byte 8 + N. Parsing checks everything a reader relies on and throws
/// <see cref="CheckpointException"/> naming the file and tensor.
/// </summary>
public sealed class SafetensorsFile
{
    /// <summary>The largest header Fabric accepts, in bytes (the safetensors reference limit).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private SafetensorsFile(string path, long dataStart, long fileLength, IReadOnlyList<TensorEntry> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        DataStart = dataStart;
        FileLength = fileLength;
        Tensors = tensors;
        Metadata = metadata;
    }

    public string Path { get; }

    /// <summary>The byte where tensor data begins (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>The file's size in bytes.</summary>
    public long FileLength { get; }

    /// <summary>The tensors in the order of their data offsets; each <see cref="TensorEntry.Offset"/> is absolute.</summary>
    public IReadOnlyList<TensorEntry> Tensors { get; }

    /// <summary>The string-to-string <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Reads and checks the header of <paramref name="path"/>.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path))
            throw new CheckpointException($"{path} does not exist.");
        using var handle = File.OpenHandle(path);
        var fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
            throw new CheckpointException($"{path} is truncated: {fileLength} bytes is too short for a safetensors header.");
        Span<byte> prefix = stackalloc byte[8];
        RandomAccess.Read(handle, prefix, 0);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
            throw new CheckpointException($"{path} declares a {headerLength}-byte header, more than the {MaxHeaderBytes}-byte limit; the file is corrupt or not safetensors.");
        if (8 + (long)headerLength > fileLength)
            throw new CheckpointException($"{path} is truncated: its header needs {8 + (long)headerLength} bytes but the file has {fileLength}.");
        var header = new byte[headerLength];
        RandomAccess.Read(handle, header, 8);
        return Parse(path, header, 8 + (long)headerLength, fileLength);
    }

    /// <summary>Parses a header's JSON; <paramref name="dataStart"/> and <paramref name="fileLength"/> bound the offsets.</summary>
    internal static SafetensorsFile Parse(string path, ReadOnlySpan<byte> headerJson, long dataStart, long fileLength)
    {
        // JsonDocument checks UTF-8 only when a string is read; checked here, a bad byte is a refusal, not a crash.
        if (!System.Text.Unicode.Utf8.IsValid(headerJson))
            throw new CheckpointException($"{path} has a header that is not valid UTF-8.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerJson.ToArray());
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path} has a header that is not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new CheckpointException($"{path} has a header that is not a JSON object.");

            var tensors = new List<TensorEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var dataLength = fileLength - dataStart;
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind == JsonValueKind.Object)
                        foreach (var m in property.Value.EnumerateObject())
                            metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                tensors.Add(ParseTensor(path, property.Name, property.Value, dataStart, dataLength));
            }

            tensors.Sort((a, b) => a.Offset.CompareTo(b.Offset));
            for (var i = 1; i < tensors.Count; i++)
            {
                var previous = tensors[i - 1];
                if (tensors[i].Offset < previous.Offset + previous.Length)
                    throw new CheckpointException($"{path}: tensor {tensors[i].Name} overlaps tensor {previous.Name} (data offsets {tensors[i].Offset - dataStart} < {previous.Offset + previous.Length - dataStart}).");
            }
            return new SafetensorsFile(path, dataStart, fileLength, tensors, metadata);
        }
    }

    private static TensorEntry ParseTensor(string path, string name, JsonElement value, long dataStart, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{path}: tensor {name} has a header entry that is not an object.");
        var dtypeName = value.TryGetProperty("dtype", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        if (!TensorDtypes.TryParseSafetensors(dtypeName, out var dtype))
            throw new CheckpointException($"{path}: tensor {name} has dtype '{dtypeName ?? "(none)"}', which Fabric does not handle (F32, F16, BF16).");

        if (!value.TryGetProperty("shape", out var s) || s.ValueKind != JsonValueKind.Array)
            throw new CheckpointException($"{path}: tensor {name} has no shape.");
        var shape = new long[s.GetArrayLength()];
        var elements = 1L;
        for (var i = 0; i < shape.Length; i++)
        {
            if (s[i].ValueKind != JsonValueKind.Number || !s[i].TryGetInt64(out shape[i]) || shape[i] < 0)
                throw new CheckpointException($"{path}: tensor {name} has an invalid shape {s.GetRawText()}.");
            elements = shape[i] == 0 ? 0 : elements > long.MaxValue / shape[i] ? throw new CheckpointException($"{path}: tensor {name} has a shape too large to address.") : elements * shape[i];
        }

        if (!value.TryGetProperty("data_offsets", out var o) || o.ValueKind != JsonValueKind.Array || o.GetArrayLength() != 2
            || o[0].ValueKind != JsonValueKind.Number || o[1].ValueKind != JsonValueKind.Number
            || !o[0].TryGetInt64(out var begin) || !o[1].TryGetInt64(out var end))
            throw new CheckpointException($"{path}: tensor {name} has no valid data_offsets [begin, end].");
        if (begin < 0 || end < begin)
            throw new CheckpointException($"{path}: tensor {name} has data_offsets [{begin}, {end}] that run backwards.");
        if (end > dataLength)
            throw new CheckpointException($"{path}: tensor {name} has data_offsets [{begin}, {end}] past the end of the data ({dataLength} bytes); the file is truncated or the header is wrong.");
        var expected = elements * dtype.ByteSize();
        if (end - begin != expected)
            throw new CheckpointException($"{path}: tensor {name} holds {end - begin} bytes but shape {s.GetRawText()} of {dtypeName} needs {expected}.");
        return new TensorEntry(name, dtype, shape, path, dataStart + begin, end - begin);
    }
}
