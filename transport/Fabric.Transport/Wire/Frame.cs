using System.Buffers.Binary;

namespace Fabric.Transport.Wire;

/// <summary>What a frame carries. Requests go client → server, replies server → client.</summary>
internal enum FrameKind : byte
{
    Hello = 1,
    HelloReply = 2,
    Read = 3,
    ReadReply = 4,
    Control = 5,
    ControlReply = 6,
}

/// <summary>
/// The fixed 16-byte header in front of every frame, little-endian:
/// body length (u32), kind (u8), status (u8), control type (u16), request id (u64). The body follows.
/// </summary>
internal readonly record struct FrameHeader(uint BodyLength, FrameKind Kind, byte Status, ushort Type, ulong RequestId)
{
    public const int Size = 16;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, BodyLength);
        destination[4] = (byte)Kind;
        destination[5] = Status;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], Type);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], RequestId);
    }

    public static FrameHeader Parse(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(source),
        (FrameKind)source[4],
        source[5],
        BinaryPrimitives.ReadUInt16LittleEndian(source[6..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]));
}

/// <summary>The body of a read request: region id (u32), length in bytes (i32), key (u64), offset in bytes (i64).</summary>
internal readonly record struct ReadFrame(uint RegionId, int Length, ulong Key, long Offset)
{
    public const int Size = 24;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, RegionId);
        BinaryPrimitives.WriteInt32LittleEndian(destination[4..], Length);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], Key);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], Offset);
    }

    public static ReadFrame Parse(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(source),
        BinaryPrimitives.ReadInt32LittleEndian(source[4..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
        BinaryPrimitives.ReadInt64LittleEndian(source[16..]));
}

/// <summary>
/// The handshake body, both ways: magic "FABR" (u32), protocol version (u16), status (u16: 0 ok, 1 version refused),
/// generation (u64: the shm file's generation, 0 for tcp).
/// </summary>
internal readonly record struct HelloFrame(uint Magic, ushort Version, ushort Status, ulong Generation)
{
    public const int Size = 16;
    public const uint FabricMagic = 0x52424146; // "FABR"
    public const ushort CurrentVersion = 1;
    public const ushort StatusOk = 0;
    public const ushort StatusVersionRefused = 1;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], Status);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], Generation);
    }

    public static HelloFrame Parse(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(source),
        BinaryPrimitives.ReadUInt16LittleEndian(source[4..]),
        BinaryPrimitives.ReadUInt16LittleEndian(source[6..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]));
}

/// <summary>Transport-internal control message types (below <see cref="ControlTypes.FirstUserType"/>).</summary>
internal static class InternalControlTypes
{
    /// <summary>shm: may the client's session read region (id, key)? Body: u32 id, u64 key. Reply body: one ReadStatus byte.</summary>
    public const ushort RegionAccess = 2;
}
