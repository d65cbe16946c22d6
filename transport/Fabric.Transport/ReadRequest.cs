namespace Fabric.Transport;

/// <summary>
/// One one-sided read: <see cref="Destination"/>.Length bytes at <see cref="Offset"/> (bytes) of remote region
/// <see cref="RegionId"/>, which is guarded by <see cref="Key"/>. The destination is memory the caller owns and keeps
/// alive (and, for RDMA, registered) until the read completes; the transport never allocates one.
/// </summary>
public readonly record struct ReadRequest(uint RegionId, ulong Key, long Offset, Memory<byte> Destination)
{
    /// <summary>The number of bytes to read.</summary>
    public int Length => Destination.Length;
}

/// <summary>
/// How a read ended. The hot path returns this instead of throwing; only cancellation by the caller's token
/// throws (<see cref="OperationCanceledException"/>).
/// </summary>
public enum ReadStatus : byte
{
    /// <summary>Every byte arrived in the destination.</summary>
    Ok = 0,
    /// <summary>Offset + length runs past the region's end, or the offset is negative.</summary>
    OutOfRange = 1,
    /// <summary>The server exports no region with this id.</summary>
    UnknownRegion = 2,
    /// <summary>The key does not match the region's key, or the session may not read this region.</summary>
    AccessDenied = 3,
    /// <summary>The connection died (peer closed, crashed, or broke the protocol) before the read completed.</summary>
    PeerGone = 4,
    /// <summary>The client's operation timeout passed first.</summary>
    TimedOut = 5,
    /// <summary>Any other transport failure (a verbs completion error, a stale shm generation).</summary>
    Failed = 6,
}

/// <summary>Sentences for each <see cref="ReadStatus"/>, for logs and error messages.</summary>
public static class ReadStatusText
{
    public static string Describe(this ReadStatus status) => status switch
    {
        ReadStatus.Ok => "the read completed",
        ReadStatus.OutOfRange => "the read runs past the end of the region",
        ReadStatus.UnknownRegion => "the server exports no such region",
        ReadStatus.AccessDenied => "the region key is wrong or the session may not read the region",
        ReadStatus.PeerGone => "the connection to the server was lost",
        ReadStatus.TimedOut => "the read timed out",
        _ => "the transport failed",
    };
}
