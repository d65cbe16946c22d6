namespace Fabric.Engine.Serving;

/// <summary>
/// The KV cache's lanes, handed to running sequences: the engine reserves <c>--max-batch</c> lanes of
/// <c>--max-seq-len</c> positions up front from the device budget; a sequence takes one lane when it is admitted and
/// gives it back the moment it finishes or is cancelled. Positions in use are counted in blocks of
/// <see cref="BlockPositions"/> for the metrics. Used by the scheduler's thread only.
/// </summary>
public sealed class KvLanes
{
    /// <summary>Positions per accounting block.</summary>
    public const int BlockPositions = 16;

    private readonly Stack<int> _free;
    private readonly int[] _positions;

    public KvLanes(int lanes, int positionsPerLane)
    {
        if (lanes <= 0 || positionsPerLane <= 0)
            throw new ArgumentOutOfRangeException(nameof(lanes), "A KV cache needs at least one lane of one position.");
        Lanes = lanes;
        PositionsPerLane = positionsPerLane;
        _positions = new int[lanes];
        _free = new Stack<int>(Enumerable.Range(0, lanes).Reverse());
    }

    public int Lanes { get; }

    public int PositionsPerLane { get; }

    public int FreeLanes => _free.Count;

    public int UsedLanes => Lanes - _free.Count;

    /// <summary>Blocks of <see cref="BlockPositions"/> in the whole cache.</summary>
    public int TotalBlocks => Lanes * BlocksFor(PositionsPerLane);

    /// <summary>Blocks the running sequences' positions fill.</summary>
    public int UsedBlocks
    {
        get
        {
            var used = 0;
            foreach (var p in _positions)
                used += BlocksFor(p);
            return used;
        }
    }

    /// <summary>Takes a free lane (the lowest free one first), or returns false when every lane is in use.</summary>
    public bool TryTake(out int lane)
    {
        if (_free.TryPop(out lane))
        {
            _positions[lane] = 0;
            return true;
        }
        return false;
    }

    /// <summary>Records that <paramref name="lane"/> now holds <paramref name="positions"/> positions.</summary>
    public void SetPositions(int lane, int positions) => _positions[lane] = positions;

    /// <summary>Returns <paramref name="lane"/> at once; its positions are free for the next sequence.</summary>
    public void Release(int lane)
    {
        _positions[lane] = 0;
        _free.Push(lane);
    }

    private static int BlocksFor(int positions) => (positions + BlockPositions - 1) / BlockPositions;
}
