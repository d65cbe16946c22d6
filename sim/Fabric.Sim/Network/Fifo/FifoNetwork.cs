using Fabric.Sim.Clock;

namespace Fabric.Sim.Network.Fifo;

/// <summary>
/// Transfers served first come, first served: a transfer reaches every channel of its path when its latency is over,
/// and each channel moves the transfers that reach it one after another at its full bandwidth. A transfer completes
/// when its slowest channel has served it. An approximation of <see cref="MaxMin.FlowNetwork"/>'s max-min fair sharing: every
/// channel still carries at most its capacity and is never idle while a transfer waits for it, but a transfer takes
/// its turn instead of a share, and holds each channel only for its bytes at that channel's bandwidth (not at the
/// pace of its bottleneck). In exchange nothing is ever re-shared: a start is one pass over the path and one event, and
/// a transfer's completion is known when it starts, so a caller may <see cref="Book(int[], long, long)"/> it and need no event at all.
/// </summary>
public sealed class FifoNetwork : IFlowNetwork, IEventHandler
{
    private readonly Simulation _sim;
    private readonly Channel[] _channels;
    private readonly Stack<int> _freeIds = new();
    private Transfer[] _transfers = new Transfer[256];
    private int _count;

    /// <param name="sim">The simulation whose clock drives the transfers.</param>
    /// <param name="capacityBytesPerSecond">Capacity of every directed channel, indexed by channel id.</param>
    public FifoNetwork(Simulation sim, IReadOnlyList<double> capacityBytesPerSecond)
    {
        _sim = sim;
        _channels = [.. capacityBytesPerSecond.Select(c => new Channel { BytesPerNs = c / 1e9 })];
    }

    /// <summary>Transfers started with <see cref="Start"/> whose completion has not run yet (booked ones are not counted).</summary>
    public int LiveFlows => _count - _freeIds.Count;

    /// <summary>Bytes each channel carries for the transfers started or booked so far: a transfer's service is fixed
    /// when it starts, so its bytes count from then on. A copy, made at each call (for the report at the end).</summary>
    public ReadOnlySpan<double> BytesCarried => _channels.Select(c => c.Carried).ToArray();

    /// <summary>When the last transfer started or booked so far completes, ns.</summary>
    public long LastCompletionNs { get; private set; }

    /// <summary>
    /// Nothing to prune: a channel that <see cref="MaxMin.RedundantChannels"/> would drop serves a subset of another channel's
    /// transfers, in the same order and no slower, so it never finishes one last; serving every channel of a route
    /// costs less than looking up the pruned route would.
    /// </summary>
    public void DeclareRoutes(IReadOnlyCollection<int[]> routes)
    {
    }

    public int Start(int[] channels, long latencyNs, long bytes, IFlowListener listener, long tag)
    {
        var done = Book(channels, latencyNs, bytes);
        var id = _freeIds.Count > 0 ? _freeIds.Pop() : NewId();
        _transfers[id] = new Transfer(listener, tag);
        _sim.Schedule(done, this, 0, id);
        return id;
    }

    /// <summary>
    /// Books a transfer that starts now on every channel of its path and returns when it completes, ns. Nothing is
    /// scheduled: a caller that knows its completion time this way (an engine model) needs no event to hear of it.
    /// </summary>
    public long Book(int[] channels, long latencyNs, long bytes) => Book(channels, _sim.Now, latencyNs, bytes);

    /// <summary>Books a transfer that starts at <paramref name="atNs"/> (bookings must come in order of that time).</summary>
    public long Book(int[] channels, long atNs, long latencyNs, long bytes)
    {
        var arrives = (double)atNs + latencyNs;
        return Complete(Serve(channels, arrives, bytes));
    }

    /// <summary>
    /// Serves a transfer that reaches <paramref name="channels"/> at <paramref name="arrivesNs"/> on each of them, after
    /// the transfers booked on it before; returns when the last of them has served it (at least when it arrives).
    /// A channel serves its transfers one after another whatever the other channels do, so a transfer may be served on
    /// part of its path now and on the rest later, as long as each channel gets its transfers in order.
    /// </summary>
    public double Serve(int[] channels, double arrivesNs, long bytes)
    {
        var done = arrivesNs;
        foreach (var c in channels)
        {
            ref var channel = ref _channels[c];
            var served = Math.Max(arrivesNs, channel.FreeAt) + (bytes / channel.BytesPerNs);
            channel.FreeAt = served;
            channel.Carried += bytes;
            done = Math.Max(done, served);
        }
        return done;
    }

    /// <summary>Reads the channels' state, so that a coming <see cref="Serve"/> finds it in the cache; changes nothing.</summary>
    public int Warm(int[] channels)
    {
        var sum = 0;
        foreach (var c in channels)
            sum += _channels[c].FreeAt > 0 ? 1 : 0;
        return sum;
    }

    /// <summary>When a transfer served until <paramref name="doneNs"/> (<see cref="Serve"/>, every part of its path) completes, ns.</summary>
    public long Complete(double doneNs)
    {
        var completes = (long)Math.Ceiling(doneNs);
        LastCompletionNs = Math.Max(LastCompletionNs, completes);
        return completes;
    }

    public void OnEvent(int kind, int a, long b)
    {
        var t = _transfers[a];
        _transfers[a] = default;
        _freeIds.Push(a);
        t.Listener.OnFlowCompleted(a, t.Tag);
    }

    private int NewId()
    {
        if (_count == _transfers.Length)
            Array.Resize(ref _transfers, _count * 2);
        return _count++;
    }

    private readonly record struct Transfer(IFlowListener Listener, long Tag);

    // Everything a booking reads and writes of a channel, together: an engine's own channels (its GPU's PCIe and NIC)
    // are visited once per visit of that engine, so each costs one cache miss, not three.
    private struct Channel
    {
        public double FreeAt; // when the channel has served every transfer that reached it, ns
        public double BytesPerNs;
        public double Carried;
    }
}
