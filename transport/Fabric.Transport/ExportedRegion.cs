namespace Fabric.Transport;

/// <summary>
/// A block of server memory that clients may read one-sided: an id, a length in bytes, a base address and a key.
/// The <see cref="RegionStore"/> that created it owns the memory; the region is valid until the store is disposed.
/// </summary>
public sealed unsafe class ExportedRegion
{
    internal ExportedRegion(uint id, ulong key, byte* baseAddress, long length)
    {
        Id = id;
        Key = key;
        BaseAddress = baseAddress;
        Length = length;
    }

    /// <summary>The id clients name in <see cref="ReadRequest.RegionId"/>.</summary>
    public uint Id { get; }

    /// <summary>The secret a read must present; a read with another key is refused.</summary>
    public ulong Key { get; }

    /// <summary>The first byte; owned by the store.</summary>
    public byte* BaseAddress { get; }

    /// <summary>The size in bytes.</summary>
    public long Length { get; }

    /// <summary>A writable view of <paramref name="length"/> bytes at <paramref name="offset"/>, for the owner filling the region.</summary>
    public Span<byte> Slice(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"Range {offset}+{length} is outside region {Id} of {Length} bytes.");
        return new Span<byte>(BaseAddress + offset, length);
    }

    /// <summary>Checks a request against this region without touching memory.</summary>
    public ReadStatus Check(ulong key, long offset, long length) =>
        key != Key ? ReadStatus.AccessDenied
        : offset < 0 || length < 0 || offset > Length - length ? ReadStatus.OutOfRange
        : ReadStatus.Ok;
}

/// <summary>Asks a store for one region: its id, size in bytes and key.</summary>
public readonly record struct RegionSpec(uint Id, long Length, ulong Key);
