namespace Fabric.Sim.Run;

/// <summary>
/// One engine's fetches in flight whose completion times are known from the start (booked on a
/// <see cref="Core.FifoNetwork"/>): kept by completion time so that the engine can take the landed ones when it next
/// acts, instead of hearing of each through an event of its own. A handful at a time, so plain arrays.
/// </summary>
public sealed class BookedFetches
{
    // Latest completion first, so that the next to land is at the end.
    private long[] _doneNs = new long[16];
    private int[] _key = new int[16];

    public int Count { get; private set; }

    /// <summary>Adds a fetch of expert <paramref name="key"/> (layer × experts + expert) that lands at <paramref name="doneNs"/>.</summary>
    public void Add(int key, long doneNs)
    {
        if (Count == _key.Length)
        {
            Array.Resize(ref _doneNs, Count * 2);
            Array.Resize(ref _key, Count * 2);
        }
        // Of two landing at the same nanosecond, the one booked first lands first.
        var i = Count;
        while (i > 0 && _doneNs[i - 1] <= doneNs)
        {
            _doneNs[i] = _doneNs[i - 1];
            _key[i] = _key[i - 1];
            i--;
        }
        _doneNs[i] = doneNs;
        _key[i] = key;
        Count++;
    }

    /// <summary>Removes and returns the next fetch to land if it has landed by <paramref name="nowNs"/>, else -1.</summary>
    public int TakeLanded(long nowNs)
    {
        if (Count == 0 || _doneNs[Count - 1] > nowNs)
            return -1;
        return _key[--Count];
    }

    /// <summary>When the fetch of <paramref name="key"/> lands, if it is booked.</summary>
    public bool TryDoneNs(int key, out long doneNs)
    {
        for (var i = Count - 1; i >= 0; i--)
        {
            if (_key[i] == key)
            {
                doneNs = _doneNs[i];
                return true;
            }
        }
        doneNs = 0;
        return false;
    }

    /// <summary>When the fetch of <paramref name="key"/> lands; it must be in flight.</summary>
    public long DoneNs(int key) =>
        TryDoneNs(key, out var doneNs) ? doneNs : throw new InvalidOperationException($"No fetch of expert {key} is in flight.");
}
