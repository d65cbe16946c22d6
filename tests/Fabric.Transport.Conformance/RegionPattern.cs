using System.Buffers.Binary;

namespace Fabric.Transport.Conformance;

/// <summary>
/// The deterministic bytes every conformance region holds: byte <c>o</c> of region <c>r</c> is byte <c>o % 8</c> of
/// SplitMix64(r, o / 8). Any range can be regenerated without keeping a copy of the region.
/// </summary>
public static class RegionPattern
{
    /// <summary>Fills all of <paramref name="region"/>.</summary>
    public static unsafe void Fill(ExportedRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        const int Chunk = 1 << 24;
        for (long offset = 0; offset < region.Length; offset += Chunk)
        {
            var length = (int)Math.Min(Chunk, region.Length - offset);
            Write(region.Id, offset, new Span<byte>(region.BaseAddress + offset, length));
        }
    }

    /// <summary>Writes the pattern of region <paramref name="regionId"/> from <paramref name="offset"/> into <paramref name="destination"/>.</summary>
    public static void Write(uint regionId, long offset, Span<byte> destination)
    {
        Span<byte> word = stackalloc byte[8];
        var i = 0;
        // Head up to the next word boundary, then whole words, then the tail.
        while (i < destination.Length && (offset + i) % 8 != 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(word, Word(regionId, (offset + i) / 8));
            destination[i] = word[(int)((offset + i) % 8)];
            i++;
        }
        for (; i + 8 <= destination.Length; i += 8)
            BinaryPrimitives.WriteUInt64LittleEndian(destination[i..], Word(regionId, (offset + i) / 8));
        for (; i < destination.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(word, Word(regionId, (offset + i) / 8));
            destination[i] = word[(int)((offset + i) % 8)];
        }
    }

    /// <summary>Whether <paramref name="actual"/> holds exactly the pattern of region <paramref name="regionId"/> at <paramref name="offset"/>.</summary>
    public static bool Matches(uint regionId, long offset, ReadOnlySpan<byte> actual)
    {
        var expected = new byte[Math.Min(actual.Length, 1 << 20)];
        for (var done = 0; done < actual.Length; done += expected.Length)
        {
            var length = Math.Min(expected.Length, actual.Length - done);
            Write(regionId, offset + done, expected.AsSpan(0, length));
            if (!actual.Slice(done, length).SequenceEqual(expected.AsSpan(0, length)))
                return false;
        }
        return true;
    }

    private static ulong Word(uint regionId, long index)
    {
        var z = ((ulong)regionId * 0x9E3779B97F4A7C15UL) + (ulong)index + 0x632BE59BD9B4E019UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
