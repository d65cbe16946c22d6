using Fabric.Common;

namespace Fabric.Engine.Runtime;

/// <summary>The KV cache asked for (positions × sequences) needs more bytes than the memory that must hold it.</summary>
public sealed class KvCacheTooLargeException : FabricException
{
    public KvCacheTooLargeException(long positions, long bytesPerPosition, long limitBytes)
        : base($"A KV cache of {positions} positions at {bytesPerPosition} bytes each needs {ByteSize.Format((double)positions * bytesPerPosition)}, " +
            $"more than the {ByteSize.Format(limitBytes)} of memory that must hold it; at most {limitBytes / bytesPerPosition} positions fit.")
    {
        Positions = positions;
        BytesPerPosition = bytesPerPosition;
        LimitBytes = limitBytes;
    }

    /// <summary>Positions per sequence × sequences.</summary>
    public long Positions { get; }

    /// <summary>Keys and values of one position over every layer: layers × 2 × KV heads × head dim × 4 bytes.</summary>
    public long BytesPerPosition { get; }

    /// <summary>The memory the KV cache had to fit in.</summary>
    public long LimitBytes { get; }

    /// <summary>The most positions (per sequence × sequences) that fit.</summary>
    public long MaxPositions => LimitBytes / BytesPerPosition;
}
