using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Fabric.Transport.Shm;

/// <summary>One row of the region table in an shm header: where a region lies and a hash of its key (never the key).</summary>
internal readonly record struct ShmRegionEntry(uint Id, long Offset, long Length, ulong KeyHash);

/// <summary>
/// The header at offset 0 of an shm file or DAX device, little-endian:
/// <code>
///   0  u64 magic "FABRSHM1" (written last, so a half-written header never validates)
///   8  u32 version (1)
///  12  u32 region count
///  16  u64 generation (random per creation, never 0)
///  24  u64 mapped bytes (the whole file)
///  32  u64 data offset (bytes of header before the first region)
///  40  u32 alignment of every region (4096, or 2 MiB on /dev/dax)
///  44  u16 control socket path length, u16 flags (bit 0: the regions live in a sealed memory file that the server
///      passes on the control socket; the file at the path then holds this header only)
///  48  256 bytes: control socket path (UTF-8)
/// 304  region table, 32 bytes a row: u32 id, u32 reserved, u64 offset, u64 length, u64 key hash
/// </code>
/// </summary>
internal static class ShmHeader
{
    public const ulong Magic = 0x314D485352424146; // "FABRSHM1"
    public const uint Version = 1;
    public const int TableOffset = 304;
    public const int RowBytes = 32;
    public const int MaxControlPathBytes = 256;

    public static long HeaderBytes(int regions) => TableOffset + (long)regions * RowBytes;

    /// <summary>The hash the header stores for a key: XxHash3 seeded with the generation, so it changes with every file.</summary>
    public static ulong HashKey(ulong key, ulong generation)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, key);
        return XxHash3.HashToUInt64(bytes, (long)generation);
    }

    public const ushort SealedMemoryFlag = 0x1;

    public static void Write(Span<byte> header, ulong generation, long mappedBytes, long dataOffset, int alignment, string controlPath, IReadOnlyList<ShmRegionEntry> rows, bool sealedMemory)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], (uint)rows.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], generation);
        BinaryPrimitives.WriteInt64LittleEndian(header[24..], mappedBytes);
        BinaryPrimitives.WriteInt64LittleEndian(header[32..], dataOffset);
        BinaryPrimitives.WriteInt32LittleEndian(header[40..], alignment);
        var path = Encoding.UTF8.GetBytes(controlPath);
        BinaryPrimitives.WriteUInt16LittleEndian(header[44..], (ushort)path.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(header[46..], sealedMemory ? SealedMemoryFlag : (ushort)0);
        header.Slice(48, MaxControlPathBytes).Clear();
        path.CopyTo(header[48..]);
        for (var i = 0; i < rows.Count; i++)
        {
            var row = header.Slice(TableOffset + (i * RowBytes), RowBytes);
            BinaryPrimitives.WriteUInt32LittleEndian(row, rows[i].Id);
            BinaryPrimitives.WriteUInt32LittleEndian(row[4..], 0);
            BinaryPrimitives.WriteInt64LittleEndian(row[8..], rows[i].Offset);
            BinaryPrimitives.WriteInt64LittleEndian(row[16..], rows[i].Length);
            BinaryPrimitives.WriteUInt64LittleEndian(row[24..], rows[i].KeyHash);
        }
    }

    /// <summary>Publishes the header: the magic goes in last.</summary>
    public static unsafe void Publish(byte* header) => Volatile.Write(ref *(ulong*)header, Magic);

    public static unsafe ulong ReadGeneration(byte* header) => Volatile.Read(ref *(ulong*)(header + 16));

    /// <summary>
    /// Reads the fixed part of a header (<see cref="TableOffset"/> bytes) from a file that may be anything: the
    /// generation, the control socket and whether the regions come as a sealed memory file. False, with a clause in
    /// <paramref name="error"/>, when it is not a Fabric header.
    /// </summary>
    public static bool TryParsePreamble(ReadOnlySpan<byte> header, out ulong generation, out string controlPath, out bool sealedMemory, out string error)
    {
        generation = 0;
        controlPath = "";
        sealedMemory = false;
        if (header.Length < TableOffset || BinaryPrimitives.ReadUInt64LittleEndian(header) != Magic)
        {
            error = "it has no Fabric header (is a server still creating it?)";
            return false;
        }
        var version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        if (version != Version)
        {
            error = $"its header has version {version}, this client reads version {Version}";
            return false;
        }
        generation = BinaryPrimitives.ReadUInt64LittleEndian(header[16..]);
        var pathLength = BinaryPrimitives.ReadUInt16LittleEndian(header[44..]);
        if (generation == 0 || pathLength == 0 || pathLength > MaxControlPathBytes)
        {
            error = "its header is damaged";
            return false;
        }
        controlPath = Encoding.UTF8.GetString(header.Slice(48, pathLength));
        sealedMemory = (BinaryPrimitives.ReadUInt16LittleEndian(header[46..]) & SealedMemoryFlag) != 0;
        error = "";
        return true;
    }

    /// <summary>
    /// Validates a mapped header of <paramref name="mappedBytes"/> bytes; on failure <paramref name="error"/> says what
    /// is wrong in a clause ("it has no Fabric header").
    /// </summary>
    public static unsafe bool TryParse(byte* header, long mappedBytes, out ulong generation, out string controlPath, out ShmRegionEntry[] rows, out string error)
    {
        generation = 0;
        controlPath = "";
        rows = [];
        if (mappedBytes < TableOffset || Volatile.Read(ref *(ulong*)header) != Magic)
        {
            error = "it has no Fabric header (is a server still creating it?)";
            return false;
        }
        var span = new ReadOnlySpan<byte>(header, TableOffset);
        var version = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
        if (version != Version)
        {
            error = $"its header has version {version}, this client reads version {Version}";
            return false;
        }
        var count = BinaryPrimitives.ReadUInt32LittleEndian(span[12..]);
        generation = BinaryPrimitives.ReadUInt64LittleEndian(span[16..]);
        var declared = BinaryPrimitives.ReadInt64LittleEndian(span[24..]);
        var pathLength = BinaryPrimitives.ReadUInt16LittleEndian(span[44..]);
        if (generation == 0 || declared != mappedBytes || pathLength == 0 || pathLength > MaxControlPathBytes
            || HeaderBytes((int)Math.Min(count, int.MaxValue / RowBytes)) > mappedBytes)
        {
            error = "its header is damaged";
            return false;
        }
        controlPath = Encoding.UTF8.GetString(span.Slice(48, pathLength));
        var table = new ReadOnlySpan<byte>(header + TableOffset, (int)count * RowBytes);
        rows = new ShmRegionEntry[count];
        for (var i = 0; i < count; i++)
        {
            var row = table.Slice(i * RowBytes, RowBytes);
            rows[i] = new ShmRegionEntry(BinaryPrimitives.ReadUInt32LittleEndian(row), BinaryPrimitives.ReadInt64LittleEndian(row[8..]),
                BinaryPrimitives.ReadInt64LittleEndian(row[16..]), BinaryPrimitives.ReadUInt64LittleEndian(row[24..]));
            if (rows[i].Offset < HeaderBytes((int)count) || rows[i].Length < 0 || rows[i].Offset > mappedBytes - rows[i].Length)
            {
                error = $"its region table is damaged (region {rows[i].Id} lies outside the file)";
                return false;
            }
        }
        error = "";
        return true;
    }
}
