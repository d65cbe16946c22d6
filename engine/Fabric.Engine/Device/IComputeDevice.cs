namespace Fabric.Engine.Device;

/// <summary>
/// Where the forward pass runs: the CPU (<see cref="Cpu.CpuDevice"/>) or a GPU backend (Fabric.Engine.Gpu, ILGPU).
/// <para>
/// Memory: every allocation comes from <see cref="Allocate"/> and counts against <see cref="Memory"/>
/// (<c>--device-memory</c>); a device never allocates outside it, scratch included.
/// </para>
/// <para>
/// Ordering: compute ops are <i>enqueued</i> in call order on one compute stream and may return before they finish
/// (the CPU device runs them at once). <see cref="Download"/>, <see cref="RouterTopK"/> and <see cref="Synchronize"/>
/// wait for the queued compute. <see cref="CopyToSlotAsync"/> runs on a separate copy stream so that fetches for
/// later layers overlap the current layer's compute; its task completes when the bytes are in the slot, and the
/// engine only enqueues <see cref="ExpertForward"/> on a slot after that task (and the pager's FetchCompleted).
/// </para>
/// <para>Activations are fp32, row-major [rows, cols], in device buffers; weights are in their <see cref="WeightType"/>
/// and every product accumulates in fp32. Offsets and sizes are in bytes unless named otherwise.</para>
/// </summary>
public interface IComputeDevice : IDisposable
{
    /// <summary>A name for logs and summaries ("cpu", "cuda:0").</summary>
    string Name { get; }

    /// <summary>The device budget every allocation is counted against.</summary>
    DeviceMemoryBudget Memory { get; }

    /// <summary>Allocates <paramref name="bytes"/> (zeroed) for <paramref name="purpose"/>; throws <see cref="InsufficientDeviceMemoryException"/> over budget.</summary>
    DeviceBuffer Allocate(long bytes, string purpose);

    /// <summary>Copies host bytes into a buffer (synchronous; for loading weights).</summary>
    void Upload(DeviceBuffer destination, long byteOffset, ReadOnlySpan<byte> source);

    /// <summary>Copies buffer bytes to the host after the queued compute has finished.</summary>
    void Download(DeviceBuffer source, long byteOffset, Span<byte> destination);

    /// <summary>
    /// Copies a verified expert block from a pinned host staging buffer into the slot buffer at
    /// <paramref name="byteOffset"/>, on the copy stream. The caller keeps <paramref name="staging"/> alive and unchanged
    /// until the task completes.
    /// </summary>
    ValueTask CopyToSlotAsync(DeviceBuffer slots, long byteOffset, ReadOnlyMemory<byte> staging, CancellationToken cancellationToken = default);

    /// <summary>Copies <paramref name="bytes"/> between device buffers, ordered with the compute ops.</summary>
    void Copy(DeviceBuffer source, long sourceByteOffset, DeviceBuffer destination, long destinationByteOffset, long bytes);

    /// <summary>Waits for all queued compute.</summary>
    void Synchronize();

    /// <summary>output[r, :] = table[tokens[r], :] as fp32; output is [tokens.Length, table.Cols].</summary>
    void Embed(DeviceMatrix table, ReadOnlySpan<int> tokens, DeviceBuffer output);

    /// <summary>output[r] = input[r] / sqrt(mean(input[r]²) + eps) ⊙ weight, over <paramref name="rows"/> rows of weight.Cols; output may alias input.</summary>
    void RmsNorm(DeviceBuffer input, DeviceMatrix weight, DeviceBuffer output, int rows, float epsilon);

    /// <summary>output[r, o] = Σ_i input[r, i] · weight[o, i] (a Linear layer, no bias); input [rows, weight.Cols], output [rows, weight.Rows].</summary>
    void MatMul(DeviceBuffer input, int rows, DeviceMatrix weight, DeviceBuffer output);

    /// <summary>
    /// Rotary embedding in place, Hugging Face's rotate-half form: for each row r (at position positions[r]) and head,
    /// x[i], x[i + d/2] rotate by angle positions[r] · theta^(−2i/d). x is [rows, heads · headDim].
    /// </summary>
    void Rope(DeviceBuffer x, int rows, int heads, int headDim, ReadOnlySpan<int> positions, float theta);

    /// <summary>
    /// Writes the rows of <paramref name="k"/> and <paramref name="v"/> ([rows, kvHeads · headDim]) into the cache of
    /// (<paramref name="layer"/>, <paramref name="sequence"/>) at <paramref name="positions"/>, then computes causal
    /// grouped-query attention for each query row (q is [rows, heads · headDim]; query head h reads kv head
    /// h / (heads / kvHeads)) over cache positions 0..positions[r], scaled by 1/sqrt(headDim). output is like q.
    /// </summary>
    void Attention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, int rows, int heads, KvCache cache, int layer, int sequence,
        ReadOnlySpan<int> positions, DeviceBuffer output);

    /// <summary>gate[i] = silu(gate[i]) · up[i] for the first <paramref name="count"/> floats.</summary>
    void SiluMul(DeviceBuffer gate, DeviceBuffer up, int count);

    /// <summary>target[i] += addend[i] for the first <paramref name="count"/> floats (the residual add).</summary>
    void Add(DeviceBuffer target, DeviceBuffer addend, int count);

    /// <summary>
    /// The router: for each of <paramref name="rows"/> rows of logits [rows, experts], softmax in fp32, the
    /// <paramref name="topK"/> largest (ties to the lower index, best first) into indices[r · topK ..], and their
    /// probabilities renormalised to sum 1 into weights. Waits for the queued compute (the result goes to the host).
    /// </summary>
    void RouterTopK(DeviceBuffer logits, int rows, int experts, int topK, Span<int> indices, Span<float> weights);

    /// <summary>
    /// One expert over the token rows routed to it: for each j, x = input[inputRows[j]],
    /// output[outputRows[j]] = w2(silu(w1 x) ⊙ w3 x) (overwritten, unweighted). input is [*, hidden]; output is
    /// [*, hidden] (the engine's per-(token, rank) buffer, so that <see cref="MoeCombine"/> sums in a fixed order
    /// whatever order the experts arrived in); scratch holds at least inputRows.Length rows.
    /// </summary>
    void ExpertForward(ExpertView expert, DeviceBuffer input, ReadOnlySpan<int> inputRows, DeviceBuffer output, ReadOnlySpan<int> outputRows,
        ExpertScratch scratch);

    /// <summary>
    /// target[r] += Σ_j weights[r · topK + j] · expertOutputs[r · topK + j] for j = 0..topK−1 in that order, over
    /// <paramref name="rows"/> rows of <paramref name="hidden"/> floats (the MoE residual add).
    /// </summary>
    void MoeCombine(DeviceBuffer expertOutputs, ReadOnlySpan<float> weights, int rows, int topK, int hidden, DeviceBuffer target);

    /// <summary>x[r, i] += bias[i] over <paramref name="rows"/> rows of bias.Cols floats (a Linear layer's bias; Qwen2-MoE's q/k/v).</summary>
    void AddBias(DeviceBuffer x, int rows, DeviceMatrix bias);

    /// <summary>x[i] = clamp(x[i], −limit, limit) for the first <paramref name="count"/> floats (OLMoE's <c>clip_qkv</c>).</summary>
    void Clamp(DeviceBuffer x, int count, float limit);

    /// <summary>
    /// A strided copy of <paramref name="width"/> floats per row: destination[r · destinationStride + destinationOffset + i] =
    /// source[r · sourceStride + sourceOffset + i] for r &lt; <paramref name="rows"/>; splits and joins packed projections.
    /// </summary>
    void CopyColumns(DeviceBuffer source, int sourceStride, int sourceOffset, DeviceBuffer destination, int destinationStride, int destinationOffset,
        int rows, int width);

    /// <summary>
    /// DeepSeek-V2's rotary embedding in place on the <paramref name="ropeDim"/> floats at <paramref name="offset"/> of every
    /// head (heads of <paramref name="headStride"/> floats, rows of heads · headStride floats): as its
    /// <c>apply_rotary_pos_emb</c>, the pairs (x[2i], x[2i+1]) are first de-interleaved into (x[i], x[i + d/2]), then
    /// rotated in the rotate-half form by angle positions[r] · theta^(−2i/d).
    /// </summary>
    void RopeInterleaved(DeviceBuffer x, int rows, int heads, int headStride, int offset, int ropeDim, ReadOnlySpan<int> positions, float theta);

    /// <summary>
    /// Multi-head latent attention over <paramref name="cache"/>: writes each row of <paramref name="latent"/>
    /// ([rows, kvLoraRank + ropeDim]: the normalised KV latent, then the rotated shared rope key) into the cache of
    /// (<paramref name="layer"/>, <paramref name="sequence"/>) at <paramref name="positions"/>, then for each query row
    /// and head attends causally over cache positions 0..positions[r] with keys [kv_b_proj_k(latent), rope key] and values
    /// kv_b_proj_v(latent), scaled by 1/sqrt(nopeDim + ropeDim). q is [rows, heads · (nopeDim + ropeDim)] (rope part
    /// rotated); <paramref name="kvB"/> is kv_b_proj [heads · (nopeDim + vDim), kvLoraRank]; output is [rows, heads · vDim].
    /// </summary>
    void LatentAttention(DeviceBuffer q, DeviceBuffer latent, int rows, int heads, int nopeDim, int vDim, DeviceMatrix kvB, LatentKvCache cache,
        int layer, int sequence, ReadOnlySpan<int> positions, DeviceBuffer output);
}
