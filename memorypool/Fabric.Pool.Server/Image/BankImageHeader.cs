using System.Buffers.Binary;
using System.IO.Hashing;
using Fabric.Common;

namespace Fabric.Pool.Server.Image;

/// <summary>One region of a bank image: its id, where its bytes start in the file and how many there are.</summary>
public readonly record struct ImageRegion(uint Id, long Offset, long Length);

/// <summary>
/// The fixed part of a bank image, at <see cref="HeaderOffset"/> of the file, little-endian:
/// <code>
///   0  u64 magic "FABRIMG1"
///   8  u32 format version (1)
///  12  u32 region count
///  16  u64 model fingerprint (<c>ModelFingerprint</c>)
///  24  u64 image bytes (the whole file as written)
///  32  u64 catalog offset (bytes from the start of the file; the catalog ends the file)
///  40  u64 catalog bytes (MessagePack CatalogReply, region keys 0)
///  48  u64 catalog xxHash64
///  56  u32 alignment of every region (bytes)
///  60  u32 reserved (0)
///  64  u64 header xxHash64: of bytes [0, 72 + 24 × regions) with this field read as 0
///  72  region table, 24 bytes a row: u32 id, u32 reserved, u64 offset, u64 length
/// </code>
/// The first <see cref="ShmSlotBytes"/> of the file are left zero for the shm header a pool writes when it serves the
/// image in place from /dev/shm or a DAX device; the header checksum does not cover them. The regions follow the
/// header space, each at an aligned offset, and the catalog comes last.
/// </summary>
public sealed record BankImageHeader(uint Version, ulong Fingerprint, long ImageBytes, long CatalogOffset, long CatalogBytes,
    ulong CatalogChecksum, int Alignment, IReadOnlyList<ImageRegion> Regions)
{
    public const ulong Magic = 0x31474D4952424146; // "FABRIMG1"

    /// <summary>The format this build writes and reads.</summary>
    public const uint CurrentVersion = 1;

    /// <summary>Bytes at the start of the file kept for the shm header (at most ~1000 regions fit it).</summary>
    public const int ShmSlotBytes = 32 * 1024;

    /// <summary>Where the image header starts.</summary>
    public const int HeaderOffset = ShmSlotBytes;

    /// <summary>Room for the image header, region table included; the catalog starts after it.</summary>
    public const int HeaderSpace = 32 * 1024;

    private const int TableOffset = 72;
    private const int RowBytes = 24;

    /// <summary>The most regions an image holds.</summary>
    public const int MaxRegions = (HeaderSpace - TableOffset) / RowBytes;

    /// <summary>Bytes of the header with <paramref name="regions"/> rows.</summary>
    public static int Bytes(int regions) => TableOffset + (regions * RowBytes);

    /// <summary>Writes the header, checksum included, into <paramref name="destination"/> (at least <see cref="Bytes"/> long).</summary>
    public void Write(Span<byte> destination)
    {
        var header = destination[..Bytes(Regions.Count)];
        header.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(header, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], (uint)Regions.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], Fingerprint);
        BinaryPrimitives.WriteInt64LittleEndian(header[24..], ImageBytes);
        BinaryPrimitives.WriteInt64LittleEndian(header[32..], CatalogOffset);
        BinaryPrimitives.WriteInt64LittleEndian(header[40..], CatalogBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(header[48..], CatalogChecksum);
        BinaryPrimitives.WriteInt32LittleEndian(header[56..], Alignment);
        for (var i = 0; i < Regions.Count; i++)
        {
            var row = header.Slice(TableOffset + (i * RowBytes), RowBytes);
            BinaryPrimitives.WriteUInt32LittleEndian(row, Regions[i].Id);
            BinaryPrimitives.WriteInt64LittleEndian(row[8..], Regions[i].Offset);
            BinaryPrimitives.WriteInt64LittleEndian(row[16..], Regions[i].Length);
        }
        BinaryPrimitives.WriteUInt64LittleEndian(header[64..], XxHash64.HashToUInt64(header));
    }

    /// <summary>
    /// Reads and checks the header of the image <paramref name="path"/>, <paramref name="fileBytes"/> long, from
    /// <paramref name="space"/> (the <see cref="HeaderSpace"/> bytes at <see cref="HeaderOffset"/>, fewer when the file
    /// is shorter). Anything wrong is a <see cref="FabricException"/> of one sentence naming the file.
    /// </summary>
    public static BankImageHeader Parse(string path, ReadOnlySpan<byte> space, long fileBytes)
    {
        if (space.Length < TableOffset)
        {
            if (space.Length >= 8 && BinaryPrimitives.ReadUInt64LittleEndian(space) != Magic)
                throw NotAnImage(path);
            throw new FabricException($"{path} is truncated: {fileBytes} bytes is too short for a bank image header; convert the model again.");
        }
        if (BinaryPrimitives.ReadUInt64LittleEndian(space) != Magic)
            throw NotAnImage(path);
        var version = BinaryPrimitives.ReadUInt32LittleEndian(space[8..]);
        if (version != CurrentVersion)
            throw new FabricException($"{path} is a bank image of format version {version}; this pool reads version {CurrentVersion}, so convert the model again with this build.");
        var count = BinaryPrimitives.ReadUInt32LittleEndian(space[12..]);
        if (count == 0 || count > MaxRegions || Bytes((int)count) > space.Length)
            throw Corrupt(path, "its region count is impossible");
        var header = space[..Bytes((int)count)];
        var scratch = header.ToArray();
        BinaryPrimitives.WriteUInt64LittleEndian(scratch.AsSpan(64), 0);
        if (XxHash64.HashToUInt64(scratch) != BinaryPrimitives.ReadUInt64LittleEndian(header[64..]))
            throw Corrupt(path, "its header checksum does not match");

        var imageBytes = BinaryPrimitives.ReadInt64LittleEndian(header[24..]);
        if (fileBytes < imageBytes)
            throw new FabricException($"{path} is truncated: it holds {fileBytes} of the image's {imageBytes} bytes; convert the model again.");
        var alignment = BinaryPrimitives.ReadInt32LittleEndian(header[56..]);
        var catalogOffset = BinaryPrimitives.ReadInt64LittleEndian(header[32..]);
        var catalogBytes = BinaryPrimitives.ReadInt64LittleEndian(header[40..]);
        if (alignment < 4096 || (alignment & (alignment - 1)) != 0
            || catalogOffset < HeaderOffset + HeaderSpace || catalogBytes <= 0 || catalogBytes > int.MaxValue || catalogOffset != imageBytes - catalogBytes)
            throw Corrupt(path, "its header describes an impossible layout");
        var regions = new ImageRegion[count];
        for (var i = 0; i < count; i++)
        {
            var row = header.Slice(TableOffset + (i * RowBytes), RowBytes);
            var region = new ImageRegion(BinaryPrimitives.ReadUInt32LittleEndian(row), BinaryPrimitives.ReadInt64LittleEndian(row[8..]), BinaryPrimitives.ReadInt64LittleEndian(row[16..]));
            if (region.Offset < HeaderOffset + HeaderSpace || region.Length <= 0 || region.Offset % alignment != 0 || region.Offset > catalogOffset - region.Length)
                throw Corrupt(path, $"region {region.Id} lies outside the file");
            regions[i] = region;
        }
        return new BankImageHeader(version, BinaryPrimitives.ReadUInt64LittleEndian(header[16..]), imageBytes, catalogOffset, catalogBytes,
            BinaryPrimitives.ReadUInt64LittleEndian(header[48..]), alignment, regions);
    }

    private static FabricException NotAnImage(string path) =>
        new($"{path} is not a Fabric bank image; write one with 'fabric pool convert --model DIR --out {path}'.");

    /// <summary>A header or catalog that fails its checks.</summary>
    public static FabricException Corrupt(string path, string what) =>
        new($"{path} is a corrupt bank image ({what}); convert the model again.");
}
