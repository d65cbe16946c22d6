using Fabric.Engine.Paging;
using Fabric.Sim.Core;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Run;

/// <summary>
/// One engine in virtual time: for each (step, layer) it asks the engine's own <see cref="ExpertPager"/> what to do
/// with the routed experts, starts a flow from the pool for every fetch (demand and prefetch), waits for the demand
/// fetches, computes for the roofline (or recorded) time, and moves on. All paging decisions are the pager's.
/// </summary>
public sealed class EngineModel : IEventHandler, IFlowListener
{
    private const int BeginVisitEvent = 0;
    private const int ComputeDoneEvent = 1;

    private readonly SimWorld _world;
    private readonly Workload _workload;
    private readonly ExpertPager _pager;
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
    private readonly bool[] _waitingFor;
    private readonly bool[] _mark;
    private readonly int[] _prediction;
    private int[] _current;
    private int[] _next;
    private int _currentCount;
    private int _nextCount;
    private long _currentRecordedNs;
    private long _nextRecordedNs;
    private int _step;
    private int _layer;
    private int _waiting;
    private long _visitStart;
    private long _stepStart;
    private readonly int _steps;

    public EngineModel(SimWorld world, Workload workload, int index, Topology.TopologyNode device, IReadOnlyList<int> poolNodes)
    {
        _world = world;
        _workload = workload;
        Index = index;
        Device = device;
        var model = workload.Model;
        _layers = model.NumHiddenLayers;
        _experts = model.NumLocalExperts;
        _topK = model.NumExpertsPerTok;
        _expertBytes = model.ExpertBytes;
        _steps = workload.DecodeTokens;
        _routing = workload.Routing(index);
        IReadOnlyList<ExpertKey>? future = null;
        if (workload.Policy == "belady")
            future = RecordFuture(workload.Routing(index));
        var policy = EvictionPolicies.Create(workload.Policy, _layers, _experts, _topK, future);
        var prefetcher = Prefetchers.Create(workload.Prefetch, _layers, _experts, _topK);
        _pager = new ExpertPager(_layers, _experts, workload.Slots, policy, prefetcher, reserveSlots: Math.Min(_topK, workload.Slots));
        _cost = new LayerCost(model, device, workload.ContextTokens, workload.LayerOverheadNs);
        _routeByPool = new Route[poolNodes.Count];
        for (var p = 0; p < poolNodes.Count; p++)
        {
            _routeByPool[p] = world.Router.Find(poolNodes[p], device.Id)
                ?? throw new Topology.TopologyException($"Engine on '{device.Name}' has no path to pool node '{world.Topology.Nodes[poolNodes[p]].Name}'.");
        }
        _predictionRandom = new Random(workload.Seed * 31 + index);
        _plan = new ExpertAssignment[_experts];
        _prefetchPlan = new ExpertAssignment[_experts];
        _waitingFor = new bool[_experts];
        _mark = new bool[_experts];
        _prediction = new int[_experts];
        var width = _routing.MaxRows * _topK;
        _current = new int[width];
        _next = new int[width];
        Result = new EngineResult(device.Name, _steps);
    }

    public int Index { get; }
    public Topology.TopologyNode Device { get; }
    public ExpertPager Pager => _pager;
    public EngineResult Result { get; }

    /// <summary>Schedules the first layer visit at the current time.</summary>
    public void Start()
    {
        if (_steps <= 0)
            return;
        _nextCount = _routing.Next(0, 0, _next);
        _nextRecordedNs = _routing.RecordedComputeNs(0, 0);
        _world.Simulation.Schedule(_world.Simulation.Now, this, BeginVisitEvent);
    }

    public void OnEvent(int kind, int a, long b)
    {
        if (kind == BeginVisitEvent)
            BeginVisit();
        else
            ComputeDone();
    }

    private void BeginVisit()
    {
        var now = _world.Simulation.Now;
        if (_layer == 0)
            _stepStart = now;
        _visitStart = now;
        (_current, _next) = (_next, _current);
        _currentCount = _nextCount;
        _currentRecordedNs = _nextRecordedNs;

        var n = _pager.BeginLayer(_layer, _current.AsSpan(0, _currentCount), _plan);
        _waiting = 0;
        for (var i = 0; i < n; i++)
            Apply(_plan[i], demand: true);

        // Look one visit ahead: the next layer's routing is what a router prediction approximates.
        var (ns, nl) = _layer + 1 == _layers ? (_step + 1, 0) : (_step, _layer + 1);
        if (ns < _steps)
        {
            _nextCount = _routing.Next(ns, nl, _next);
            _nextRecordedNs = _routing.RecordedComputeNs(ns, nl);
        }
        else
        {
            _nextCount = 0;
        }
        if (_workload.Prefetch != "none")
        {
            var predicted = _pager.Prefetcher.WantsRouterPrediction ? Predict() : 0;
            var m = _pager.PrefetchNext(_prediction.AsSpan(0, predicted), _prefetchPlan);
            for (var i = 0; i < m; i++)
                Apply(_prefetchPlan[i], demand: false);
        }
        Result.Visits++;
        if (_waiting == 0)
            AllResident();
    }

    private void Apply(in ExpertAssignment a, bool demand)
    {
        switch (a.Kind)
        {
            case AssignmentKind.Fetch:
                StartFetch(a.Key, demand);
                if (demand)
                {
                    _waitingFor[a.Key.Expert] = true;
                    _waiting++;
                }
                break;
            case AssignmentKind.Pending when demand:
                _waitingFor[a.Key.Expert] = true;
                _waiting++;
                break;
            default:
                break;
        }
    }

    // The next visit's distinct experts, each replaced by a wrong one with probability 1 − accuracy.
    private int Predict()
    {
        var count = 0;
        for (var i = 0; i < _nextCount; i++)
        {
            var e = _next[i];
            if (_predictionRandom.NextDouble() >= _workload.PredictionAccuracy)
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

    private void StartFetch(ExpertKey key, bool demand)
    {
        var keyIndex = (key.Layer * _experts) + key.Expert;
        var route = _routeByPool[keyIndex % _routeByPool.Length];
        _world.Network.Start(route.Channels, route.LatencyNs, _expertBytes, this, keyIndex);
        Result.BytesFetched += _expertBytes;
        if (demand)
            Result.DemandFetches++;
        else
            Result.Prefetches++;
    }

    public void OnFlowCompleted(int flow, long tag)
    {
        var key = new ExpertKey((int)(tag / _experts), (int)(tag % _experts));
        _pager.FetchCompleted(key);
        if (key.Layer == _layer && _waitingFor[key.Expert])
        {
            _waitingFor[key.Expert] = false;
            if (--_waiting == 0)
                AllResident();
        }
    }

    private void AllResident()
    {
        if (_pager.DeferredCount > 0)
        {
            // More experts than slots in this visit: release the computed ones and fetch the rest.
            foreach (var e in _pager.CurrentExperts)
                _pager.Release(new ExpertKey(_layer, e));
            var n = _pager.AssignDeferred(_plan);
            for (var i = 0; i < n; i++)
                Apply(_plan[i], demand: true);
            if (_waiting > 0)
                return;
            if (_pager.DeferredCount > 0)
                throw new InvalidOperationException($"Engine {Device.Name} cannot make progress: layer {_layer} needs more experts than its {_workload.Slots} slots can take.");
        }
        var now = _world.Simulation.Now;
        Result.StallNs += now - _visitStart;
        var rows = _currentCount / _topK;
        var compute = _currentRecordedNs >= 0 ? _currentRecordedNs : _cost.TimeNs(_layer, rows, _pager.CurrentExperts.Length);
        Result.ComputeNs += compute;
        _world.Simulation.Schedule(now + compute, this, ComputeDoneEvent);
    }

    private void ComputeDone()
    {
        _pager.EndLayer();
        if (++_layer < _layers)
        {
            BeginVisit();
            return;
        }
        var now = _world.Simulation.Now;
        if (_step == 0 && _workload.FirstStepIsPrefill)
            Result.PrefillNs = now - _stepStart;
        else
            Result.RecordStep(now - _stepStart, _workload.Batch);
        _layer = 0;
        if (++_step < _steps)
            BeginVisit();
        else
            Result.FinishedAtNs = now;
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
