using Fabric.Model;
using MessagePack;

namespace Fabric.Pool.Protocol;

/// <summary>
/// Control message types of the pool (MessagePack bodies over the transport's control channel). A client first
/// sends <see cref="Authenticate"/>; until it has, every other request and every read is refused as unauthorized.
/// </summary>
public static class PoolMessageTypes
{
    /// <summary><see cref="AuthenticateRequest"/> → <see cref="AuthenticateReply"/> of type <see cref="AuthenticateReplyType"/>.</summary>
    public const ushort Authenticate = 100;
    public const ushort AuthenticateReplyType = 101;

    /// <summary><see cref="CatalogRequest"/> → <see cref="CatalogReply"/> of type <see cref="CatalogReplyType"/>.</summary>
    public const ushort Catalog = 102;
    public const ushort CatalogReplyType = 103;
}

/// <summary>Presents a tenant token (<c>name:secret</c> as written in the pool's tokens file, or just the secret).</summary>
[MessagePackObject]
public sealed record AuthenticateRequest([property: Key(0)] string Token);

/// <summary>The tenant the token belongs to; from now on the session reads as this tenant.</summary>
[MessagePackObject]
public sealed record AuthenticateReply([property: Key(0)] string Tenant);

/// <summary>Asks for the whole catalog. <see cref="Version"/> is the catalog format the client speaks (1).</summary>
[MessagePackObject]
public sealed record CatalogRequest([property: Key(0)] int Version = 1);

/// <summary>One exported region of the bank: the id and key a read names, and its size in bytes.</summary>
[MessagePackObject]
public sealed record RegionInfo(
    [property: Key(0)] uint Id,
    [property: Key(1)] ulong Key,
    [property: Key(2)] long Length);

/// <summary>One projection of an expert: where it starts inside the expert's bytes (bytes), its shape and dtype.</summary>
[MessagePackObject]
public sealed record ExpertPart(
    [property: Key(0)] long Offset,
    [property: Key(1)] long[] Shape,
    [property: Key(2)] TensorDtype Dtype,
    [property: Key(3)] long Length);

/// <summary>
/// One routed expert in the bank: <see cref="Length"/> bytes at <see cref="Offset"/> (4 KiB aligned) of region
/// <see cref="RegionId"/>, holding gate, up and down in that order, each at its own offset within the expert.
/// <see cref="Checksum"/> is the xxHash64 (seed 0) of those <see cref="Length"/> bytes.
/// </summary>
[MessagePackObject]
public sealed record ExpertEntry(
    [property: Key(0)] int Layer,
    [property: Key(1)] int Expert,
    [property: Key(2)] uint RegionId,
    [property: Key(3)] long Offset,
    [property: Key(4)] long Length,
    [property: Key(5)] ulong Checksum,
    [property: Key(6)] ExpertPart Gate,
    [property: Key(7)] ExpertPart Up,
    [property: Key(8)] ExpertPart Down);

/// <summary>One dense tensor in the bank: <see cref="Length"/> bytes at <see cref="Offset"/> of region <see cref="RegionId"/>, xxHash64 <see cref="Checksum"/>.</summary>
[MessagePackObject]
public sealed record DenseEntry(
    [property: Key(0)] string Name,
    [property: Key(1)] uint RegionId,
    [property: Key(2)] long Offset,
    [property: Key(3)] long Length,
    [property: Key(4)] long[] Shape,
    [property: Key(5)] TensorDtype Dtype,
    [property: Key(6)] ulong Checksum);

/// <summary>
/// Everything an engine needs to read the bank: the model, the regions (with their keys), every expert ordered by
/// (layer, expert), and the dense tensors.
/// </summary>
[MessagePackObject]
public sealed record CatalogReply(
    [property: Key(0)] ModelConfig Model,
    [property: Key(1)] RegionInfo[] Regions,
    [property: Key(2)] ExpertEntry[] Experts,
    [property: Key(3)] DenseEntry[] Dense)
{
    /// <summary>The expert at (<paramref name="layer"/>, <paramref name="expert"/>); experts are ordered layer-major.</summary>
    public ExpertEntry GetExpert(int layer, int expert) => Experts[(layer * Model.NumLocalExperts) + expert];

    /// <summary>The dense tensor named <paramref name="name"/>, or null.</summary>
    public DenseEntry? FindDense(string name) => Array.Find(Dense, d => d.Name == name);

    /// <summary>The region with <paramref name="id"/>; throws when the catalog has none.</summary>
    public RegionInfo GetRegion(uint id) => Array.Find(Regions, r => r.Id == id)
        ?? throw new Fabric.Common.FabricException($"The catalog names region {id}, which it does not list.");
}
