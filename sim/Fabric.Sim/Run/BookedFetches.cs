namespace Fabric.Sim.Run;

/// <summary>
/// One engine's fetches in flight whose completion times are known from the start (booked on a
/// <see cref="Network.Fifo.FifoNetwork"/>): kept by completion time so that the engine can take the landed ones when it next
/// acts, instead of hearing of each through an event of its own. A handful at a time, so one plain array, each
/// fetch's time and expert side by side.
/// </summary>
public sealed class BookedFetches
{
    // Latest completion first, so that the next to land is at the end.
    private Entry[] _entries = new Entry[16];

    public int Count { get; private set; }

    /// <summary>Fetches issued whose landing is not booked yet (run in windows: until the window's end).</summary>
    public int Unbooked { get; private set; }

    /// <summary>A fetch was issued; its landing is booked later (<see cref="AddExpected"/>).</summary>
    public void Expect() => Unbooked++;

    /// <summary>Adds a fetch announced by <see cref="Expect"/>, now booked.</summary>
    public void AddExpected(int key, long doneNs)
    {
        if (Unbooked == 0)
            throw new InvalidOperationException($"The fetch of expert {key} was booked without being expected.");
        Unbooked--;
        Add(key, doneNs);
    }

    /// <summary>Adds a fetch of expert <paramref name="key"/> (layer × experts + expert) that lands at <paramref name="doneNs"/>.</summary>
    public void Add(int key, long doneNs)
    {
        if (Count == _entries.Length)
            Array.Resize(ref _entries, Count * 2);
        // Of two landing at the same nanosecond, the one booked first lands first.
        var i = Count;
        while (i > 0 && _entries[i - 1].DoneNs <= doneNs)
        {
            _entries[i] = _entries[i - 1];
            i--;
        }
        _entries[i] = new Entry(doneNs, key);
        Count++;
    }

    /// <summary>Reads the fetches in flight, so that the engine's next turn finds them in the cache; changes nothing.</summary>
    public int Warm()
    {
        var sum = Unbooked;
        for (var i = 0; i < Count; i++)
            sum += _entries[i].Key;
        return sum;
    }

    /// <summary>Removes and returns the next fetch to land if it has landed by <paramref name="nowNs"/>, else -1.</summary>
    public int TakeLanded(long nowNs)
    {
        if (Count == 0 || _entries[Count - 1].DoneNs > nowNs)
            return -1;
        return _entries[--Count].Key;
    }

    /// <summary>When the fetch of <paramref name="key"/> lands, if it is booked.</summary>
    public bool TryDoneNs(int key, out long doneNs)
    {
        for (var i = Count - 1; i >= 0; i--)
        {
            if (_entries[i].Key == key)
            {
                doneNs = _entries[i].DoneNs;
                return true;
            }
        }
        doneNs = 0;
        return false;
    }

    /// <summary>When the fetch of <paramref name="key"/> lands; it must be in flight.</summary>
    public long DoneNs(int key) =>
        TryDoneNs(key, out var doneNs) ? doneNs : throw new InvalidOperationException($"No fetch of expert {key} is in flight.");

    private readonly record struct Entry(long DoneNs, int Key);
}
