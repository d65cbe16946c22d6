using System.Runtime.ExceptionServices;
using Fabric.Sim.Network.Fifo;

namespace Fabric.Sim.Run;

/// <summary>
/// Runs engines on fifo links in windows of virtual time, the engines split between threads. No fetch lands sooner
/// than the shortest fetch takes (the window), so within a window no engine can depend on a fetch issued in it, and
/// an engine depends on no other engine at all: each thread runs its engines through the window alone, and an engine
/// that must know a new fetch's landing to go on waits for the window's end (so does one that worked ahead past the
/// window's end, where its own fetches may have landed). There the window's fetches are booked on the links they
/// share with other engines in one order (time, then engine), and each thread hands them to its engines as it starts
/// the next window; on its engine's own links (<see cref="SplitRoute"/>) a fetch is served as it is issued. Nothing
/// depends on how the engines are split or where the windows end, so a run gives the same results on any number of
/// threads.
/// <para>A thread that finishes its part of a window first waits for the others (and the helpers wait while the loop's
/// thread books). Meanwhile it warms its engines of the next window: it reads, changing nothing, what their next turns
/// will touch (<see cref="WindowedFifoFetches.Warm"/>), so that they find it in the cache. Most of a turn's time is cache
/// misses over a thousand engines' pagers, so the waits pay for some of the misses of the next window.</para>
/// </summary>
internal sealed class FifoWindows
{
    private readonly Group[] _groups;
    private readonly long _windowNs;
    private readonly int[] _cursor;
    private readonly bool _warmEveryEngine;
    private long _endNs; // the current window's end

    // windowNs: the shortest any of the engines' fetches takes (EngineModel.ShortestFetchNs).
    // warmEveryEngine: warm each engine before its turn whether or not its thread has to wait (tests: warming changes nothing).
    public FifoWindows(IReadOnlyList<EngineModel> engines, FifoNetwork network, long expertBytes, long windowNs, int threads, bool warmEveryEngine = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowNs, 1);
        _windowNs = windowNs;
        _warmEveryEngine = warmEveryEngine;
        threads = Math.Clamp(threads, 1, Math.Max(1, engines.Count));
        var routes = SplitRoute.Of(engines);
        _groups = [.. Enumerable.Range(0, threads).Select(_ => new Group(routes, network, expertBytes))];
        _cursor = new int[threads];
        for (var i = 0; i < engines.Count; i++)
            engines[i].RunIn(_groups[i * threads / engines.Count]);
    }

    public long Events => _groups.Sum(g => g.Events);

    /// <summary>The threads the engines are split between.</summary>
    public int Threads => _groups.Length;

    /// <summary>Runs every engine to its end, calling <paramref name="window"/> after each window.</summary>
    public void Run(Action window)
    {
        var helpers = _groups.Skip(1).Select(g => new Helper(g)).ToArray();
        try
        {
            RunWindows(helpers, window);
        }
        finally
        {
            foreach (var h in helpers)
                h.Dispose();
        }
    }

    // One phase per window on every thread: hand the last window's bookings to their engines and go on with those
    // that waited for them, then run the window. A window starts where the earliest next event is; while engines wait
    // for bookings, that is not known before they go on, but it is no earlier than the last window's end (a booking
    // lands after its window), so the next window starts there.
    private void RunWindows(Helper[] helpers, Action window)
    {
        Action<Group> run = g =>
        {
            g.Continue();
            g.RunUntil(_endNs);
            g.Stage(_endNs + _windowNs);
            while (_warmEveryEngine && g.WarmOne())
            {
            }
        };
        var start = NextEventNs();
        while (start != long.MaxValue)
        {
            _endNs = start + _windowNs;
            Phase(helpers, run);
            BookInOrder(_endNs);
            window();
            start = AnyParked() ? _endNs : NextEventNs();
        }
        // The last bookings go to their engines too, though none of them will act again.
        Phase(helpers, g => g.Continue());
    }

    private bool AnyParked()
    {
        foreach (var g in _groups)
        {
            if (g.Parked > 0)
                return true;
        }
        return false;
    }

    private long NextEventNs()
    {
        var start = long.MaxValue;
        foreach (var g in _groups)
            start = Math.Min(start, g.NextNs);
        return start;
    }

    // Each group's fetches are in (time, engine) order already (its engines run in that order, and only while running
    // do they fetch), so the window's fetches are booked by merging the groups' lists.
    private void BookInOrder(long windowEndNs)
    {
        Array.Clear(_cursor);
        while (true)
        {
            var best = -1;
            for (var g = 0; g < _groups.Length; g++)
            {
                if (_cursor[g] < _groups[g].FetchCount && (best < 0 || _groups[g].Precedes(_cursor[g], _groups[best], _cursor[best])))
                    best = g;
            }
            if (best < 0)
                return;
            _groups[best].Book(_cursor[best]++, windowEndNs);
        }
    }

    private void Phase(Helper[] helpers, Action<Group> work)
    {
        foreach (var h in helpers)
            h.Begin(work);
        work(_groups[0]);
        foreach (var h in helpers)
            h.Wait(_groups[0]);
    }

    /// <summary>One thread's engines: their next events, and the window's fetches and waits.</summary>
    internal sealed class Group(SplitRoute[][] routes, FifoNetwork network, long bytes)
    {
        private readonly PriorityQueue<WindowedFifoFetches, (long Time, int Engine)> _queue = new();
        private readonly List<WindowedFifoFetches> _parked = [];
        private PendingFetch[] _fetches = new PendingFetch[64];
        private (WindowedFifoFetches Engine, long Time)[] _staged = new (WindowedFifoFetches, long)[64];
        private int _stagedNext;
        private int _stagedCount;
        private int _warmed;
        private int _warmedParked;
        private int _warmth; // what the warm reads add up to, kept so that they are not optimised away

        public long Events { get; private set; }

        public int FetchCount { get; private set; }

        /// <summary>Engines waiting for the window's bookings.</summary>
        public int Parked => _parked.Count;

        public long NextNs => Math.Min(
            _stagedNext < _stagedCount ? _staged[_stagedNext].Time : long.MaxValue,
            _queue.TryPeek(out _, out var key) ? key.Time : long.MaxValue);

        /// <summary>
        /// Takes the engines whose next events are due before <paramref name="untilNs"/> (all of them in the next
        /// window) out of the queue, in order, so that <see cref="WarmOne"/> can warm them while the thread waits.
        /// </summary>
        public void Stage(long untilNs)
        {
            _stagedNext = _stagedCount = _warmed = _warmedParked = 0;
            while (_queue.TryPeek(out var engine, out var key) && key.Time < untilNs)
            {
                _queue.Dequeue();
                if (_stagedCount == _staged.Length)
                    Array.Resize(ref _staged, _stagedCount * 2);
                _staged[_stagedCount++] = (engine, key.Time);
            }
        }

        /// <summary>
        /// Warms the next engine of the next window, in the order they will run (first those waiting for this window's
        /// bookings, then those taken out of the queue); false when none is left.
        /// </summary>
        public bool WarmOne()
        {
            if (_warmedParked < _parked.Count)
            {
                _warmth += _parked[_warmedParked++].Warm();
                return true;
            }
            if (_warmed < _stagedCount)
            {
                _warmth += _staged[_warmed++].Engine.Warm();
                return true;
            }
            return false;
        }

        /// <summary>Reads an engine's route to a pool node and the state of its own channels (<see cref="WindowedFifoFetches.WarmRoute"/>).</summary>
        public int WarmRoute(int engine, int pool)
        {
            ref readonly var route = ref routes[engine][pool];
            return network.Warm(route.Own) + route.Shared.Length;
        }

        public void Schedule(WindowedFifoFetches engine, long atNs) => _queue.Enqueue(engine, (atNs, engine.Index));

        public void Park(WindowedFifoFetches engine) => _parked.Add(engine);

        // The fetch is served on the engine's own channels now, on the engine's thread (no other engine's fetches cross
        // them, and its own come in order); what the shared channels need is copied from its route, so that the one
        // thread that books them at the window's end touches neither the route nor the engine, and its booking goes
        // straight into the engine's booked fetches.
        public void Fetch(int engine, BookedFetches booked, int key, int pool, long atNs)
        {
            if (FetchCount > 0 && Precedes(atNs, engine, _fetches[FetchCount - 1]))
                throw new InvalidOperationException($"Engine {engine}'s fetch at {atNs} ns came after a later one: the window's fetches would be booked out of order.");
            if (FetchCount == _fetches.Length)
                Array.Resize(ref _fetches, FetchCount * 2);
            ref readonly var route = ref routes[engine][pool];
            var arrives = (double)atNs + route.LatencyNs;
            var served = network.Serve(route.Own, arrives, bytes);
            _fetches[FetchCount++] = new PendingFetch(engine, booked, key, route.Shared, arrives, served, atNs, 0);
            booked.Expect();
        }

        /// <summary>The end of the window being run (or last run).</summary>
        public long EndNs { get; private set; }

        public void RunUntil(long endNs)
        {
            EndNs = endNs;
            // The staged engines, then the queue, merged in (time, engine) order: engines that waited for the bookings
            // go on at the window's start and may fall due before a staged one.
            while (true)
            {
                var queued = _queue.TryPeek(out var engine, out var key);
                if (_stagedNext < _stagedCount)
                {
                    var (staged, time) = _staged[_stagedNext];
                    if (!queued || time < key.Time || (time == key.Time && staged.Index < key.Engine))
                    {
                        _stagedNext++;
                        Events++;
                        staged.RunPending(time);
                        continue;
                    }
                }
                if (!queued || key.Time >= endNs)
                    break;
                _queue.Dequeue();
                Events++;
                engine!.RunPending(key.Time);
            }
            if (_stagedNext < _stagedCount)
                throw new InvalidOperationException("An engine taken out for the next window was not run in it.");
            _stagedNext = _stagedCount = 0;
        }

        // Whether fetch i comes before the other group's fetch j: by time, then engine (an engine is in one group).
        public bool Precedes(int i, Group other, int j) => Precedes(_fetches[i].AtNs, _fetches[i].Engine, other._fetches[j]);

        private static bool Precedes(long atNs, int engine, in PendingFetch other) =>
            atNs < other.AtNs || (atNs == other.AtNs && engine < other.Engine);

        public void Book(int i, long windowEndNs)
        {
            ref var r = ref _fetches[i];
            r.DoneNs = network.Complete(Math.Max(r.OwnServedNs, network.Serve(r.Shared, r.ArrivesNs, bytes)));
            if (r.DoneNs < windowEndNs)
                throw new InvalidOperationException($"A fetch issued at {r.AtNs} ns lands at {r.DoneNs} ns, inside its window (ends {windowEndNs} ns).");
        }

        public void Continue()
        {
            for (var i = 0; i < FetchCount; i++)
                _fetches[i].Booked.AddExpected(_fetches[i].Key, _fetches[i].DoneNs);
            FetchCount = 0; // the entries are overwritten before they are read again; what they point to lives for the run
            foreach (var engine in _parked)
                engine.Resume();
            _parked.Clear();
        }

        private record struct PendingFetch(int Engine, BookedFetches Booked, int Key, int[] Shared, double ArrivesNs, double OwnServedNs, long AtNs, long DoneNs);
    }

    // A thread of its own for one group: runs the group's part of each phase while the loop's thread runs the first group's.
    private sealed class Helper : IDisposable
    {
        private readonly Group _group;
        private readonly Thread _thread;
        private Action<Group>? _work;
        private volatile int _started;
        private volatile int _finished;
        private volatile bool _stopping;
        private ExceptionDispatchInfo? _failure;

        public Helper(Group group)
        {
            _group = group;
            _thread = new Thread(Loop) { IsBackground = true, Name = "fabric-sim window" };
            _thread.Start();
        }

        public void Begin(Action<Group> work)
        {
            _work = work;
            _started++;
        }

        // While waiting, the loop's thread warms its own next engines.
        public void Wait(Group own)
        {
            var spin = new SpinWait();
            while (_finished != _started)
            {
                if (!own.WarmOne())
                    spin.SpinOnce(sleep1Threshold: -1);
            }
            _failure?.Throw();
        }

        public void Dispose()
        {
            _stopping = true;
            _thread.Join();
        }

        private void Loop()
        {
            var spin = new SpinWait();
            var done = 0;
            while (!_stopping)
            {
                if (_started == done)
                {
                    if (!_group.WarmOne())
                        spin.SpinOnce(sleep1Threshold: -1);
                    continue;
                }
                spin = default;
                try
                {
                    _work!(_group);
                }
                catch (Exception e)
                {
                    _failure = ExceptionDispatchInfo.Capture(e);
                }
                _finished = ++done;
            }
        }
    }
}
