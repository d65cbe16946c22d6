using Fabric.Transport;

namespace Fabric.Pool.Protocol;

/// <summary>
/// Where one block of the bank (an expert or a dense tensor) lies in one pool: <see cref="Length"/> bytes at
/// <see cref="Offset"/> of region <see cref="RegionId"/>, read with <see cref="Key"/>, hashing to <see cref="Checksum"/>.
/// </summary>
public readonly record struct BlockLocation(uint RegionId, ulong Key, long Offset, long Length, ulong Checksum)
{
    /// <summary>The read of <paramref name="destination"/>.Length bytes starting <paramref name="start"/> bytes into the block.</summary>
    public ReadRequest Request(Memory<byte> destination, long start = 0) => new(RegionId, Key, Offset + start, destination);
}
