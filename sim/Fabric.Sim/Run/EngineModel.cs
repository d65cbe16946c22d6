using Fabric.Engine.Paging;
using Fabric.Sim.Clock;
using Fabric.Sim.Compute;
using Fabric.Sim.Network.Fifo;
using Fabric.Sim.Routing;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Run;

/// <summary>
/// One engine in virtual time: for each (step, layer) it asks the engine's own <see cref="ExpertPager"/> what to do
/// with the routed experts, starts a flow from the pool for every fetch (demand and prefetch), waits for the demand
/// fetches, computes for the roofline (or recorded) time, and moves on. All paging decisions are the pager's. How its
/// events meet the clock and how its fetches land is its <see cref="FetchScheduler"/>'s.
/// </summary>
public sealed class EngineModel : IEventHandler
{
    private const int BeginVisitEvent = 0;
    private const int ComputeDoneEvent = 1;
    private const int DenseDoneEvent = 2;
    private const int ExpertDoneEvent = 3;
    private const int StepDoneEvent = 4;

    private readonly SimWorld _world;
    private readonly Workload _workload;
    private readonly ExpertPager _pager;
    private readonly PagerWarmer _warmer;
    private readonly IRoutingSource _routing;
    private readonly LayerCost _cost;
    private readonly Route[] _routeByPool;
    private readonly int _layers;
    private readonly int _experts;
    private readonly int _topK;
    private readonly long _expertBytes;
    private readonly Random _predictionRandom;
    private readonly ExpertAssignment[] _plan;
    private readonly ExpertAssignment[] _prefetchPlan;
    private readonly bool[] _landed;
    private readonly BookedFetches _booked = new();
    private readonly bool _prefetches;
    private FetchScheduler _fetches;
    private readonly int[] _order;
    private int _orderCount;
    private int _orderNext;
    private int _stalledOn = -1;
    private long _stallStart;
    private long _expertNs;
    private long _hitNs;
    private int _planCount;
    private readonly bool[] _mark;
    private readonly int[] _prediction;
    private int[] _current;
    private int[] _next;
    private int _currentCount;
    private int _nextCount;
    private int[] _currentPrediction;
    private int[] _nextPrediction;
    private int _currentPredictionCount;
    private int _nextPredictionCount;
    private long _currentRecordedNs;
    private long _nextRecordedNs;
    private long _currentOutsideNs;
    private long _nextOutsideNs;
    private int _step;
    private int _layer;
    private long _stepStart;
    private readonly int _steps;

    public EngineModel(SimWorld world, Workload workload, int index, Topology.TopologyNode device, IReadOnlyList<int> poolNodes)
    {
        _world = world;
        _workload = workload;
        Index = index;
        Device = device;
        var model = workload.Model;
        _layers = model.ExpertLayers;
        _experts = model.NumLocalExperts;
        _topK = model.NumExpertsPerTok;
        _expertBytes = model.ExpertBytes;
        _steps = workload.DecodeTokens;
        _routing = workload.Routing(index);
        IReadOnlyList<ExpertKey>? future = null;
        if (workload.Policy == "belady")
            future = RecordFuture(workload.Routing(index));
        _pager = ExpertPager.Create(new PagerSettings(_layers, _experts, _topK, workload.Slots, workload.Policy, workload.Prefetch)
        {
            ReserveSlots = Math.Min(_topK, workload.Slots),
            FutureAccesses = future,
        });
        _warmer = new PagerWarmer(_pager, _pager.Policy as IWarmablePolicy);
        _prefetches = _pager.Prefetcher.Prefetches;
        _cost = world.CostOn(workload, device);
        // What every visit touches first, together; then the routes, then what only max-min needs.
        _predictionRandom = new Random(workload.Seed * 31 + index);
        _plan = new ExpertAssignment[_experts];
        _prefetchPlan = new ExpertAssignment[_experts];
        _landed = new bool[_experts];
        _order = new int[_experts];
        _mark = new bool[_experts];
        _prediction = new int[_experts];
        var width = _routing.MaxRows * _topK;
        _current = new int[width];
        _next = new int[width];
        _currentPrediction = new int[_experts];
        _nextPrediction = new int[_experts];
        _routeByPool = new Route[poolNodes.Count];
        for (var p = 0; p < poolNodes.Count; p++)
        {
            _routeByPool[p] = world.Router.Find(poolNodes[p], device.Id)
                ?? throw new Topology.TopologyException($"Engine on '{device.Name}' has no path to pool node '{world.Topology.Nodes[poolNodes[p]].Name}'.");
        }
        _fetches = world.Network is FifoNetwork fifo
            ? new SerialFifoFetches(this, world.Simulation, fifo, _routeByPool, _expertBytes, _booked)
            : new MaxMinFetches(this, world.Simulation, world.Network, _routeByPool, _expertBytes);
        Result = new EngineResult(device.Name, _steps);
    }

    public int Index { get; }
    public Topology.TopologyNode Device { get; }
    public ExpertPager Pager => _pager;

    /// <summary>The routes its fetches take, one per pool node.</summary>
    public IReadOnlyList<Route> Routes => _routeByPool;
    public EngineResult Result { get; }

    /// <summary>Schedules the first layer visit at the current time.</summary>
    public void Start()
    {
        if (_steps <= 0)
            return;
        _nextCount = _routing.Next(0, 0, _next);
        _nextPredictionCount = _routing.RecordedPrediction(_nextPrediction);
        _nextRecordedNs = _routing.RecordedComputeNs(0, 0);
        _nextOutsideNs = _layers == 1 ? _routing.RecordedOutsideNs(0) : 0;
        _fetches.Schedule(_world.Simulation.Now, BeginVisitEvent);
    }

    public void OnEvent(int kind, int a, long b) => Run(kind, _world.Simulation.Now);

    /// <summary>From now on the engine's events and fetches go through <paramref name="group"/> (<see cref="FifoWindows"/>).</summary>
    internal void RunIn(FifoWindows.Group group) => _fetches = new WindowedFifoFetches(this, group, _booked);

    /// <summary>The shortest a fetch of this engine can take, from its issue to its landing, ns.</summary>
    internal long ShortestFetchNs => _routeByPool.Min(r => r.LatencyNs + (long)(_expertBytes / (r.BottleneckBandwidth / 1e9)));

    /// <summary>
    /// Reads, without changing anything, what the engine's next event will touch (its plan's fetch routes, the pager's
    /// state for the next visit), so that it is in the cache when the event runs (<see cref="WindowedFifoFetches.Warm"/>).
    /// </summary>
    /// <param name="beginsVisit">The next event begins a visit (the engine waits to begin one).</param>
    internal int Warm(bool beginsVisit)
    {
        var sum = _planCount + _order[0] + (_landed[0] ? 1 : 0) + (int)Result.Visits;
        if (!beginsVisit)
        {
            // The plan's fetches are issued at the next event.
            for (var i = 0; i < _planCount; i++)
            {
                if (_plan[i].Kind == AssignmentKind.Fetch)
                    sum += _fetches.WarmRoute(PoolOf(KeyIndex(_layer, _plan[i].Key.Expert)));
            }
        }
        // The visit that comes next (or, for an engine waiting to begin one, that one): its experts are what the
        // prefetches go for, nearly, and what the visit's plan looks up.
        var nextLayer = beginsVisit ? _layer : (_layer + 1) % _layers;
        for (var i = 0; i < _nextCount; i++)
            sum += _fetches.WarmRoute(PoolOf(KeyIndex(nextLayer, _next[i])));
        return sum + _warmer.Warm(nextLayer, _next.AsSpan(0, _nextCount));
    }

    /// <summary>
    /// Goes on from <paramref name="startNs"/>, where the engine waited for bookings of its fetches: it begins its next
    /// visit (<paramref name="beginsVisit"/>) or goes on working ahead through the fetched experts.
    /// </summary>
    internal void ResumeAt(long startNs, bool beginsVisit)
    {
        if (beginsVisit)
            BeginVisit(startNs);
        else
            RunAhead(startNs);
    }

    /// <summary>Runs the engine's event <paramref name="kind"/>, due at <paramref name="now"/>.</summary>
    internal void Run(int kind, long now)
    {
        switch (kind)
        {
            case BeginVisitEvent:
                BeginVisit(now);
                break;
            case DenseDoneEvent:
                DenseDone(now);
                break;
            case ExpertDoneEvent:
                NextExpert(now);
                break;
            case StepDoneEvent:
                StepDone(now);
                break;
            default:
                ComputeDone(now);
                break;
        }
    }

    // A visit runs as the engine's MoeEngine does: the dense part (attention, router) first; then the demand fetches
    // and the prefetches are issued; the resident experts compute while they fly; then each fetched expert in turn is
    // waited for (stall) and computed. Recorded compute time splits into dense and per-expert parts by the roofline.
    // Every step takes the virtual time it happens at: with fifo links the engine works ahead of the clock (RunAhead).
    private void BeginVisit(long now)
    {
        TakeLandedFetches(now);
        if (_layer == 0)
            _stepStart = now;
        (_current, _next) = (_next, _current);
        _currentCount = _nextCount;
        (_currentPrediction, _nextPrediction) = (_nextPrediction, _currentPrediction);
        _currentPredictionCount = _nextPredictionCount;
        _currentRecordedNs = _nextRecordedNs;
        _currentOutsideNs = _nextOutsideNs;

        _planCount = _pager.BeginLayer(_layer, _current.AsSpan(0, _currentCount), _plan);
        for (var i = 0; i < _planCount; i++)
            _landed[_plan[i].Key.Expert] = false;
        var distinct = _pager.CurrentExperts.Length;
        var rows = _currentCount / _topK;
        var recorded = _currentRecordedNs >= 0;
        var compute = recorded ? _currentRecordedNs : _cost.TimeNs(_layer, rows, distinct);
        var share = distinct == 0 ? 0 : _cost.ExpertShare(_layer, rows, distinct, withHead: !recorded);
        var slowdown = _workload.HitSlowdownBesideFetch;
        if (slowdown != 1 && distinct > 0)
        {
            var (hits, fetching) = (0, 0);
            for (var i = 0; i < _planCount; i++)
            {
                if (_plan[i].Kind == AssignmentKind.Hit)
                    hits++;
                else if (_plan[i].Kind is AssignmentKind.Fetch or AssignmentKind.Pending)
                    fetching++;
            }
            if (hits == 0 || fetching == 0)
                slowdown = 1;
            // A recorded time already holds the slowdown: U + (slowdown − 1)·hits·e with e = U·share/distinct.
            var stretch = (slowdown - 1) * hits * share / distinct;
            if (recorded)
                compute = (long)(compute / (1 + stretch));
            else
                Result.ComputeNs += (long)(compute * stretch);
        }
        _expertNs = distinct == 0 ? 0 : (long)(compute * share / distinct);
        _hitNs = (long)(_expertNs * slowdown);
        var dense = compute - (_expertNs * distinct);
        Result.ComputeNs += recorded ? _currentRecordedNs : compute;

        // Look one visit ahead: the next layer's routing is what a router prediction approximates.
        var (ns, nl) = _layer + 1 == _layers ? (_step + 1, 0) : (_step, _layer + 1);
        if (ns < _steps)
        {
            _nextCount = _routing.Next(ns, nl, _next);
            _nextPredictionCount = _routing.RecordedPrediction(_nextPrediction);
            _nextRecordedNs = _routing.RecordedComputeNs(ns, nl);
            _nextOutsideNs = nl == _layers - 1 ? _routing.RecordedOutsideNs(ns) : 0;
        }
        else
        {
            _nextCount = 0;
        }
        Result.Visits++;
        _fetches.Schedule(now + dense, DenseDoneEvent);
    }

    private void DenseDone(long now)
    {
        TakeLandedFetches(now);
        _orderCount = 0;
        _orderNext = 0;
        var hits = 0;
        for (var i = 0; i < _planCount; i++)
        {
            if (_plan[i].Kind == AssignmentKind.Hit)
                hits++;
            else if (_plan[i].Kind is AssignmentKind.Fetch or AssignmentKind.Pending)
                _order[_orderCount++] = _plan[i].Key.Expert;
        }
        for (var i = 0; i < _planCount; i++)
            Apply(_plan[i], demand: true, now);
        if (_prefetches)
        {
            var predicted = _pager.Prefetcher.WantsRouterPrediction ? Predict() : 0;
            var m = _pager.PrefetchNext(_prediction.AsSpan(0, predicted), _prefetchPlan);
            for (var i = 0; i < m; i++)
                Apply(_prefetchPlan[i], demand: false, now);
        }
        // The resident experts compute while the fetches fly.
        if (_fetches.KnowsLandings)
            RunAhead(now + (hits * _hitNs));
        else
            _fetches.Schedule(now + (hits * _hitNs), ExpertDoneEvent);
    }

    // The next fetched expert in plan order: compute it if it has landed, else stall until it does.
    private void NextExpert(long now)
    {
        TakeLandedFetches(now);
        if (_orderNext < _orderCount && _fetches.KnowsLandings)
        {
            RunAhead(now);
            return;
        }
        if (_orderNext < _orderCount)
        {
            var e = _order[_orderNext];
            if (!_landed[e])
            {
                _stalledOn = e;
                _stallStart = now;
                return;
            }
            _orderNext++;
            _fetches.Schedule(now + _expertNs, ExpertDoneEvent);
            return;
        }
        if (_pager.DeferredCount > 0)
        {
            // More experts than slots in this visit: release the computed ones and fetch the rest.
            foreach (var e in _pager.CurrentExperts)
                _pager.Release(new ExpertKey(_layer, e));
            var n = _pager.AssignDeferred(_plan);
            _orderCount = 0;
            _orderNext = 0;
            for (var i = 0; i < n; i++)
            {
                if (_plan[i].Kind == AssignmentKind.Fetch)
                    _landed[_plan[i].Key.Expert] = false;
                if (_plan[i].Kind is AssignmentKind.Fetch or AssignmentKind.Pending)
                    _order[_orderCount++] = _plan[i].Key.Expert;
                Apply(_plan[i], demand: true, now);
            }
            if (_orderCount == 0 && _pager.DeferredCount > 0)
                throw new InvalidOperationException($"Engine {Device.Name} cannot make progress: layer {_layer} needs more experts than its {_workload.Slots} slots can take.");
            NextExpert(now);
            return;
        }
        ComputeDone(now);
    }

    // When every fetch's landing time is known once it is booked (fifo links), and nothing but its own fetches can
    // change an engine between two of its issues. So from the fetches' issue the engine works out at once its turns
    // through the fetched experts (each waited for, then computed), the end of the layer, and the next visit up to the
    // end of its dense part, where it issues fetches again: one event per visit, where the event-driven turns take one
    // per expert and one per landing. Only the fetches are issued on the clock, as other engines' fetches queue with them.
    // Run in windows (FifoWindows), the fetches of the current window are booked at its end: an engine that needs one's
    // landing waits there (parks) and goes on from here (ResumeAt).
    private void RunAhead(long startNs)
    {
        if (!TryFetchedExpertsEnd(startNs, out var end))
        {
            _fetches.WaitForBookings(startNs);
            return;
        }
        if (_pager.DeferredCount > 0)
            _fetches.Schedule(end, ExpertDoneEvent); // the deferred experts' fetches are issued then
        else
            ComputeDone(end);
    }

    // When the fetched experts still to compute are done, each waited for and computed in turn; false, with nothing
    // changed, when one's landing is not known yet (a fetch issued in the current window, before the window's end).
    private bool TryFetchedExpertsEnd(long startNs, out long endNs)
    {
        endNs = startNs;
        var stall = 0L;
        for (var i = _orderNext; i < _orderCount; i++)
        {
            var e = _order[i];
            if (!_landed[e])
            {
                if (!_booked.TryDoneNs(KeyIndex(_layer, e), out var landsAt))
                    return false;
                if (landsAt > endNs)
                {
                    stall += landsAt - endNs;
                    endNs = landsAt;
                }
            }
            endNs += _expertNs;
        }
        _orderNext = _orderCount;
        AddStall(stall);
        return true;
    }

    // With fifo links a fetch lands without an event: the engine takes the fetches landed by now when it next acts.
    private void TakeLandedFetches(long now)
    {
        int key;
        while ((key = _booked.TakeLanded(now)) >= 0)
            Landed(new ExpertKey(key / _experts, key % _experts));
    }

    // An expert's index in the engine's per-expert state (layer × experts + expert), and the pool node that holds it.
    private int KeyIndex(int layer, int expert) => (layer * _experts) + expert;

    internal int PoolOf(int keyIndex) => keyIndex % _routeByPool.Length;

    private void AddStall(long ns)
    {
        Result.StallNs += ns;
        if (_step == 0 && _workload.FirstStepIsPrefill)
            Result.PrefillStallNs += ns;
    }

    private void Apply(in ExpertAssignment a, bool demand, long now)
    {
        if (a.Kind == AssignmentKind.Fetch)
            StartFetch(a.Key, demand, now);
    }

    // The recording engine's own prediction when the workload replays it; otherwise the next visit's distinct experts,
    // each replaced by a wrong one with probability 1 − accuracy.
    private int Predict()
    {
        if (_workload.UsesRecordedPredictions)
        {
            var n = Math.Max(0, _currentPredictionCount);
            _currentPrediction.AsSpan(0, n).CopyTo(_prediction);
            return n;
        }
        var accuracy = _workload.PredictionAccuracy ?? Workload.DefaultPredictionAccuracy;
        var count = 0;
        for (var i = 0; i < _nextCount; i++)
        {
            var e = _next[i];
            if (_predictionRandom.NextDouble() >= accuracy)
                e = _predictionRandom.Next(_experts);
            if (!_mark[e])
            {
                _mark[e] = true;
                _prediction[count++] = e;
            }
        }
        for (var i = 0; i < count; i++)
            _mark[_prediction[i]] = false;
        return count;
    }

    private void StartFetch(ExpertKey key, bool demand, long now)
    {
        var keyIndex = KeyIndex(key.Layer, key.Expert);
        _fetches.Fetch(keyIndex, PoolOf(keyIndex), now);
        Result.BytesFetched += _expertBytes;
        if (demand)
            Result.DemandFetches++;
        else
            Result.Prefetches++;
    }

    /// <summary>The fetch of expert <paramref name="keyIndex"/> (layer × experts + expert) landed at <paramref name="now"/>, told by an event.</summary>
    internal void FetchLanded(int keyIndex, long now)
    {
        var key = new ExpertKey(keyIndex / _experts, keyIndex % _experts);
        Landed(key);
        if (key.Layer == _layer && _stalledOn == key.Expert)
        {
            _stalledOn = -1;
            AddStall(now - _stallStart);
            NextExpert(now);
        }
    }

    private void Landed(ExpertKey key)
    {
        _pager.FetchCompleted(key);
        if (key.Layer == _layer)
            _landed[key.Expert] = true;
    }

    private void ComputeDone(long now)
    {
        _pager.EndLayer();
        if (++_layer < _layers)
        {
            NextVisit(now);
            return;
        }
        // A recorded step also spent time outside its layers (LM head, sampling) before the next step began.
        if (_currentOutsideNs > 0)
        {
            Result.ComputeNs += _currentOutsideNs;
            if (_fetches.KnowsLandings)
                StepDone(now + _currentOutsideNs);
            else
                _fetches.Schedule(now + _currentOutsideNs, StepDoneEvent);
            return;
        }
        StepDone(now);
    }

    private void StepDone(long now)
    {
        if (_step == 0 && _workload.FirstStepIsPrefill)
            Result.PrefillNs = now - _stepStart;
        else
            Result.RecordStep(now - _stepStart, _workload.Batch);
        _layer = 0;
        if (++_step < _steps)
            NextVisit(now);
        else
            Result.FinishedAtNs = now;
    }

    private void NextVisit(long now)
    {
        if (!_fetches.WaitsBeforeVisit(now))
            BeginVisit(now);
    }

    private List<ExpertKey> RecordFuture(IRoutingSource source)
    {
        var width = source.MaxRows * _topK;
        var buffer = new int[width];
        var visits = new List<(int, IEnumerable<int>)>();
        for (var s = 0; s < _steps; s++)
        {
            for (var l = 0; l < _layers; l++)
            {
                var n = source.Next(s, l, buffer);
                visits.Add((l, buffer[..n]));
            }
        }
        return BeladyPolicy.AccessSequence(visits);
    }
}
