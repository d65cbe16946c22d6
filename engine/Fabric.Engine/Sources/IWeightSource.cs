using Fabric.Engine.Device;
using Fabric.Engine.Paging;
using Fabric.Model;

namespace Fabric.Engine.Sources;

/// <summary>One dense tensor a source can deliver: its name, shape, dtype and size in bytes.</summary>
public sealed record DenseTensorInfo(string Name, long[] Shape, TensorDtype Dtype, long Bytes);

/// <summary>
/// Where the engine gets its weights: a local checkpoint (everything resident) or a pool over the transport.
/// Fetches write into caller-owned pinned staging memory and verify before returning; a source never hands back
/// bytes whose checksum failed.
/// </summary>
public interface IWeightSource : IAsyncDisposable
{
    /// <summary>The model.</summary>
    ModelConfig Config { get; }

    /// <summary>How experts are packed: a fetched block is exactly a slot's contents.</summary>
    ExpertSlotLayout ExpertLayout { get; }

    /// <summary>The dense tensors, by name.</summary>
    IReadOnlyDictionary<string, DenseTensorInfo> DenseTensors { get; }

    /// <summary>Where the experts come from, for summaries and traces ("local", "tcp", "shm").</summary>
    string TransportName { get; }

    /// <summary>Reads that were repeated (a failed read, a dead connection or a bad checksum); 0 for a local checkpoint.</summary>
    long Retries { get; }

    /// <summary>Blocks whose checksum did not match, refused and never used; 0 for a local checkpoint.</summary>
    long CorruptBlocks { get; }

    /// <summary>Reads (and verifies) dense tensor <paramref name="name"/> into <paramref name="destination"/>.</summary>
    ValueTask ReadDenseAsync(string name, Memory<byte> destination, CancellationToken cancellationToken);

    /// <summary>
    /// Reads expert <paramref name="key"/>'s packed block into <paramref name="staging"/> (at least
    /// <see cref="ExpertSlotLayout.SlotBytes"/>) and verifies its checksum, retrying on this or another endpoint.
    /// Returns the bytes moved over the transport (failed attempts included). Throws <see cref="Fabric.Common.FabricException"/>
    /// when no endpoint can deliver a verified copy.
    /// </summary>
    ValueTask<long> FetchExpertAsync(ExpertKey key, Memory<byte> staging, CancellationToken cancellationToken);
}
