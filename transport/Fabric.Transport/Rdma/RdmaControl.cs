using MessagePack;

namespace Fabric.Transport.Rdma;

/// <summary>
/// The rdma backend's control messages, carried on the tcp control channel that runs beside the queue pair. They use
/// the top of the type range so that they never meet the types of the layers above (which count up from 100).
/// </summary>
internal static class RdmaControlTypes
{
    /// <summary>Client → server: "I want a queue pair"; the reply says where the rdma_cm listener is and which token to present.</summary>
    public const ushort Hello = 65000;

    /// <summary>Client → server: "give me the keys of region N"; the server checks the key and Authorize first.</summary>
    public const ushort RegionGrant = 65001;

    /// <summary>The length of the one-time token a client puts in its connect request's private data.</summary>
    public const int TokenBytes = 16;

    /// <summary>How much of a refusal's reason the server puts in a reject (IB allows 148 bytes of private data).</summary>
    public const int MaxRejectReasonBytes = 140;
}

[MessagePackObject]
public sealed record RdmaHelloRequest([property: Key(0)] int Version);

/// <summary>Where to connect the queue pair (the rdma_cm port on the same host) and the token that binds it to the client's session.</summary>
[MessagePackObject]
public sealed record RdmaHelloReply([property: Key(0)] int CmPort, [property: Key(1)] byte[] Token);

[MessagePackObject]
public sealed record RdmaRegionGrantRequest([property: Key(0)] uint RegionId, [property: Key(1)] ulong Key);

/// <summary>What an RDMA READ of a region needs: its remote virtual address, rkey and length in bytes.</summary>
[MessagePackObject]
public sealed record RdmaRegionGrant([property: Key(0)] ulong Address, [property: Key(1)] uint Rkey, [property: Key(2)] long Length);
