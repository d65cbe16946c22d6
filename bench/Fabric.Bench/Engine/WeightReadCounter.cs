using Fabric.Engine.Device;

namespace Fabric.Bench.Engine;

/// <summary>
/// A compute device that forwards every op to another and counts the weight bytes each op reads: a projection its
/// whole matrix, a norm or bias its vector, an expert its three matrices, latent attention its kv_b_proj, an embedding
/// lookup one row per token. The engine reading a weight twice in one step would show as more bytes than the model's
/// active parameters.
/// </summary>
internal sealed class WeightReadCounter(IComputeDevice inner) : IComputeDevice
{
    /// <summary>Weight bytes read since the last <see cref="Reset"/>.</summary>
    public long BytesRead { get; private set; }

    public void Reset() => BytesRead = 0;

    public string Name => inner.Name;

    public DeviceMemoryBudget Memory => inner.Memory;

    public DeviceBuffer Allocate(long bytes, string purpose) => inner.Allocate(bytes, purpose);

    public void Upload(DeviceBuffer destination, long byteOffset, ReadOnlySpan<byte> source) => inner.Upload(destination, byteOffset, source);

    public void Download(DeviceBuffer source, long byteOffset, Span<byte> destination) => inner.Download(source, byteOffset, destination);

    public ValueTask CopyToSlotAsync(DeviceBuffer slots, long byteOffset, ReadOnlyMemory<byte> staging, CancellationToken cancellationToken = default) =>
        inner.CopyToSlotAsync(slots, byteOffset, staging, cancellationToken);

    public void Copy(DeviceBuffer source, long sourceByteOffset, DeviceBuffer destination, long destinationByteOffset, long bytes) =>
        inner.Copy(source, sourceByteOffset, destination, destinationByteOffset, bytes);

    public void Synchronize() => inner.Synchronize();

    public void Embed(DeviceMatrix table, ReadOnlySpan<int> tokens, DeviceBuffer output)
    {
        BytesRead += (long)tokens.Length * table.Cols * table.Type.Size();
        inner.Embed(table, tokens, output);
    }

    public void RmsNorm(DeviceBuffer input, DeviceMatrix weight, DeviceBuffer output, int rows, float epsilon)
    {
        BytesRead += weight.Bytes;
        inner.RmsNorm(input, weight, output, rows, epsilon);
    }

    public void MatMul(DeviceBuffer input, int rows, DeviceMatrix weight, DeviceBuffer output)
    {
        BytesRead += weight.Bytes;
        inner.MatMul(input, rows, weight, output);
    }

    public void Rope(DeviceBuffer x, int rows, int heads, int headDim, ReadOnlySpan<int> positions, float theta) => inner.Rope(x, rows, heads, headDim, positions, theta);

    public void Attention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, int rows, int heads, KvCache cache, int layer, int sequence, ReadOnlySpan<int> positions, DeviceBuffer output) =>
        inner.Attention(q, k, v, rows, heads, cache, layer, sequence, positions, output);

    public void SiluMul(DeviceBuffer gate, DeviceBuffer up, int count) => inner.SiluMul(gate, up, count);

    public void Add(DeviceBuffer target, DeviceBuffer addend, int count) => inner.Add(target, addend, count);

    public void RouterTopK(DeviceBuffer logits, int rows, int experts, int topK, Span<int> indices, Span<float> weights) =>
        inner.RouterTopK(logits, rows, experts, topK, indices, weights);

    public void ExpertForward(ExpertView expert, DeviceBuffer input, ReadOnlySpan<int> inputRows, DeviceBuffer output, ReadOnlySpan<int> outputRows, ExpertScratch scratch)
    {
        BytesRead += expert.W1.Bytes + expert.W3.Bytes + expert.W2.Bytes;
        inner.ExpertForward(expert, input, inputRows, output, outputRows, scratch);
    }

    public void MoeCombine(DeviceBuffer expertOutputs, ReadOnlySpan<float> weights, int rows, int topK, int hidden, DeviceBuffer target) =>
        inner.MoeCombine(expertOutputs, weights, rows, topK, hidden, target);

    public void AddBias(DeviceBuffer x, int rows, DeviceMatrix bias)
    {
        BytesRead += bias.Bytes;
        inner.AddBias(x, rows, bias);
    }

    public void Clamp(DeviceBuffer x, int count, float limit) => inner.Clamp(x, count, limit);

    public void CopyColumns(DeviceBuffer source, int sourceStride, int sourceOffset, DeviceBuffer destination, int destinationStride, int destinationOffset, int rows, int width) =>
        inner.CopyColumns(source, sourceStride, sourceOffset, destination, destinationStride, destinationOffset, rows, width);

    public void RopeInterleaved(DeviceBuffer x, int rows, int heads, int headStride, int offset, int ropeDim, ReadOnlySpan<int> positions, float theta) =>
        inner.RopeInterleaved(x, rows, heads, headStride, offset, ropeDim, positions, theta);

    public void LatentAttention(DeviceBuffer q, DeviceBuffer latent, int rows, int heads, int nopeDim, int vDim, DeviceMatrix kvB, LatentKvCache cache, int layer, int sequence,
        ReadOnlySpan<int> positions, DeviceBuffer output)
    {
        BytesRead += kvB.Bytes;
        inner.LatentAttention(q, latent, rows, heads, nopeDim, vDim, kvB, cache, layer, sequence, positions, output);
    }

    public void Dispose() => inner.Dispose();
}
