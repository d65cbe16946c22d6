using System.Runtime.InteropServices;

namespace Fabric.Sim.Network.MaxMin;

/// <summary>
/// The channels whose flows changed in the current instant without a local update: they wait for the re-fill at the
/// instant's end, and until then no local change may touch them.
/// </summary>
internal sealed class DirtyChannels(int channelCount)
{
    private readonly bool[] _dirty = new bool[channelCount];
    private readonly List<int> _list = [];

    public bool Any => _list.Count > 0;

    public ReadOnlySpan<int> All => CollectionsMarshal.AsSpan(_list);

    public bool Contains(int c) => _dirty[c];

    public bool ContainsAny(int[] channels)
    {
        if (_list.Count == 0)
            return false;
        foreach (var c in channels)
        {
            if (_dirty[c])
                return true;
        }
        return false;
    }

    public void Add(int c)
    {
        if (!_dirty[c])
        {
            _dirty[c] = true;
            _list.Add(c);
        }
    }

    public void Clear()
    {
        foreach (var c in _list)
            _dirty[c] = false;
        _list.Clear();
    }
}
