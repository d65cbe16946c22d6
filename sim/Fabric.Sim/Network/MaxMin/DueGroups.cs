namespace Fabric.Sim.Network.MaxMin;

/// <summary>
/// The bottleneck groups that have a next completion, in order of when it is due (then by group id): an indexed
/// binary min-heap, so moving a group's due time is O(log groups) and leaves nothing stale behind. The network keeps
/// one wake-up event in the simulation's queue for the earliest of them instead of an event per group per change,
/// most of which would have gone stale before they ran.
/// </summary>
internal sealed class DueGroups
{
    private readonly int[] _heap;
    private readonly int[] _position;
    private readonly long[] _at;
    private int _count;

    public DueGroups(int groups)
    {
        _heap = new int[groups];
        _position = new int[groups];
        _at = new long[groups];
        Array.Fill(_position, -1);
    }

    public int Count => _count;

    /// <summary>When group <paramref name="g"/> is due, or -1 when it is not waiting.</summary>
    public long At(int g) => _position[g] < 0 ? -1 : _at[g];

    /// <summary>Makes group <paramref name="g"/> due at <paramref name="at"/>, whether or not it was waiting.</summary>
    public void Set(int g, long at)
    {
        var i = _position[g];
        if (i < 0)
        {
            i = _count++;
            _heap[i] = g;
            _position[g] = i;
            _at[g] = at;
            Up(i);
            return;
        }
        var old = _at[g];
        _at[g] = at;
        if (at < old)
            Up(i);
        else if (at > old)
            Down(i);
    }

    /// <summary>Takes group <paramref name="g"/> out, if it is waiting.</summary>
    public void Remove(int g)
    {
        var i = _position[g];
        if (i < 0)
            return;
        _position[g] = -1;
        var last = _heap[--_count];
        if (i == _count)
            return;
        _heap[i] = last;
        _position[last] = i;
        Up(i);
        Down(_position[last]);
    }

    /// <summary>The group due first and when, if any is waiting.</summary>
    public bool TryPeek(out int g, out long at)
    {
        if (_count == 0)
        {
            g = -1;
            at = 0;
            return false;
        }
        g = _heap[0];
        at = _at[g];
        return true;
    }

    private bool Before(int a, int b) => _at[a] < _at[b] || (_at[a] == _at[b] && a < b);

    private void Up(int i)
    {
        var g = _heap[i];
        while (i > 0)
        {
            var parent = (i - 1) >> 1;
            var p = _heap[parent];
            if (!Before(g, p))
                break;
            _heap[i] = p;
            _position[p] = i;
            i = parent;
        }
        _heap[i] = g;
        _position[g] = i;
    }

    private void Down(int i)
    {
        var g = _heap[i];
        while (true)
        {
            var child = (2 * i) + 1;
            if (child >= _count)
                break;
            if (child + 1 < _count && Before(_heap[child + 1], _heap[child]))
                child++;
            var c = _heap[child];
            if (!Before(c, g))
                break;
            _heap[i] = c;
            _position[c] = i;
            i = child;
        }
        _heap[i] = g;
        _position[g] = i;
    }
}
