namespace Fabric.Engine.Paging;

/// <summary>
/// Least frequently used, counting every use of an expert since the start (also while it was not resident), so that
/// popular experts stay once the counts settle; ties go to the older last use.
/// </summary>
public sealed class LfuPolicy : ScoredPolicy
{
    private readonly long[] _uses;
    private readonly int _expertsPerLayer;

    public LfuPolicy(int layers, int expertsPerLayer)
    {
        _uses = new long[layers * expertsPerLayer];
        _expertsPerLayer = expertsPerLayer;
    }

    public override string Name => "lfu";

    public override void OnUse(int slot, ExpertKey key, long accessIndex)
    {
        base.OnUse(slot, key, accessIndex);
        _uses[(key.Layer * _expertsPerLayer) + key.Expert]++;
    }

    protected override double Score(int slot, ExpertKey key, SlotTable slots, in EvictionContext context) =>
        _uses[(key.Layer * _expertsPerLayer) + key.Expert];
}

/// <summary>
/// Fabric's activation-aware policy ("activation"): estimates when each resident expert will next be used and evicts
/// the one expected furthest away, as Belady would with the real future.
/// <para>
/// Each expert's activation probability per visit of its layer is estimated from exponentially decayed counts
/// (half-life <see cref="HalfLifeVisits"/> visits of the layer) with a prior of top-k / experts worth one visit:
/// p = (uses + prior) / (visits + 1). MoE decode visits layers in a cycle, so an expert of layer l is next needed
/// after d(l) layers (d = distance from the current layer, 1..L) plus L layers for each further visit until it is
/// routed: expected distance ≈ d + L·(1 − p)/p. The rate term keeps the experts a skewed router favours (under
/// independent routing, keeping the most probable experts is the optimal online choice); the distance term breaks
/// near-ties toward experts whose layer comes sooner.
/// </para>
/// </summary>
public sealed class ActivationPolicy : ScoredPolicy
{
    private readonly double[] _uses;
    private readonly int[] _lastVisit;
    private readonly int[] _layerVisits;
    private readonly double[] _decayedVisits;
    private readonly int _layers;
    private readonly int _expertsPerLayer;
    private readonly double _decay;
    private readonly double _prior;

    /// <remarks>topK: experts routed per token; the prior probability is topK / experts. halfLifeVisits: visits of a
    /// layer after which an old activation counts half.</remarks>
    public ActivationPolicy(int layers, int expertsPerLayer, int topK, double halfLifeVisits = 256)
    {
        _layers = layers;
        _expertsPerLayer = expertsPerLayer;
        _uses = new double[layers * expertsPerLayer];
        _lastVisit = new int[layers * expertsPerLayer];
        _layerVisits = new int[layers];
        _decayedVisits = new double[layers];
        _prior = Math.Clamp((double)topK / expertsPerLayer, 1e-3, 1);
        HalfLifeVisits = halfLifeVisits;
        _decay = Math.Pow(0.5, 1 / halfLifeVisits);
    }

    public double HalfLifeVisits { get; }

    public override string Name => "activation";

    /// <summary>Starts a visit of <paramref name="layer"/>: the pager calls this once per BeginLayer.</summary>
    public void OnLayerVisit(int layer)
    {
        _layerVisits[layer]++;
        _decayedVisits[layer] = (_decayedVisits[layer] * _decay) + 1;
    }

    public override void OnUse(int slot, ExpertKey key, long accessIndex)
    {
        base.OnUse(slot, key, accessIndex);
        var i = (key.Layer * _expertsPerLayer) + key.Expert;
        _uses[i] = DecayedUses(i, key.Layer) + 1;
        _lastVisit[i] = _layerVisits[key.Layer];
    }

    /// <summary>The estimated probability that a visit of the expert's layer routes to it.</summary>
    public double Probability(ExpertKey key)
    {
        var i = (key.Layer * _expertsPerLayer) + key.Expert;
        return (DecayedUses(i, key.Layer) + _prior) / (_decayedVisits[key.Layer] + 1);
    }

    protected override double Score(int slot, ExpertKey key, SlotTable slots, in EvictionContext context)
    {
        var p = Math.Max(Probability(key), 1e-6);
        var distance = key.Layer - context.CurrentLayer;
        if (distance <= 0)
            distance += _layers;
        return -(distance + (_layers * (1 - p) / p));
    }

    private double DecayedUses(int i, int layer) => _uses[i] * Math.Pow(_decay, _layerVisits[layer] - _lastVisit[i]);
}

/// <summary>
/// Belady's MIN (offline optimal): evicts the resident expert whose next use lies furthest in the future. It needs
/// the whole access sequence, so a run records a trace first and a second run replays with the oracle.
/// The sequence is the pager's: for each (step, layer) in order, the layer's distinct routed experts in ascending order.
/// </summary>
public sealed class BeladyPolicy : ScoredPolicy
{
    private readonly int[][] _positions;
    private readonly int[] _cursor;
    private readonly int _expertsPerLayer;
    private readonly ExpertKey[] _future;

    public BeladyPolicy(int layers, int expertsPerLayer, IReadOnlyList<ExpertKey> futureAccesses)
    {
        _expertsPerLayer = expertsPerLayer;
        _future = [.. futureAccesses];
        var counts = new int[layers * expertsPerLayer];
        foreach (var k in _future)
            counts[Index(k)]++;
        _positions = new int[counts.Length][];
        for (var i = 0; i < counts.Length; i++)
            _positions[i] = new int[counts[i]];
        Array.Clear(counts);
        for (var t = 0; t < _future.Length; t++)
        {
            var i = Index(_future[t]);
            _positions[i][counts[i]++] = t;
        }
        _cursor = new int[counts.Length];
    }

    /// <summary>Builds the pager's access sequence from per-(step, layer) routed experts, in run order.</summary>
    public static List<ExpertKey> AccessSequence(IEnumerable<(int Layer, IEnumerable<int> Experts)> routedPerLayerVisit)
    {
        var sequence = new List<ExpertKey>();
        foreach (var (layer, experts) in routedPerLayerVisit)
        {
            foreach (var e in experts.Distinct().Order())
                sequence.Add(new ExpertKey(layer, e));
        }
        return sequence;
    }

    public override string Name => "belady";

    public override void OnUse(int slot, ExpertKey key, long accessIndex)
    {
        base.OnUse(slot, key, accessIndex);
        if (accessIndex >= _future.Length || _future[accessIndex] != key)
        {
            throw new InvalidOperationException(
                $"The run diverged from the recorded trace at use {accessIndex} ({key}); Belady needs a trace of this very run (same model, prompt and tokens).");
        }
    }

    protected override double Score(int slot, ExpertKey key, SlotTable slots, in EvictionContext context) =>
        -NextUse(key, context.AccessIndex);

    /// <summary>The index of the next use of <paramref name="key"/> at or after <paramref name="now"/>; +∞ when never.</summary>
    public double NextUse(ExpertKey key, long now)
    {
        var i = Index(key);
        var positions = _positions[i];
        ref var c = ref _cursor[i];
        while (c < positions.Length && positions[c] < now)
            c++;
        return c < positions.Length ? positions[c] : double.PositiveInfinity;
    }

    private int Index(ExpertKey key) => (key.Layer * _expertsPerLayer) + key.Expert;
}

/// <summary>Creates policies by their command-line names.</summary>
public static class EvictionPolicies
{
    /// <summary>The names <see cref="Create"/> accepts.</summary>
    public static readonly string[] Names = ["lru", "lfu", "activation", "belady"];

    /// <summary>Creates a policy; <paramref name="futureAccesses"/> is required for "belady" only.</summary>
    public static IEvictionPolicy Create(string name, int layers, int expertsPerLayer, int topK, IReadOnlyList<ExpertKey>? futureAccesses = null) =>
        name switch
        {
            "lru" => new LruPolicy(),
            "lfu" => new LfuPolicy(layers, expertsPerLayer),
            "activation" => new ActivationPolicy(layers, expertsPerLayer, topK),
            "belady" => new BeladyPolicy(layers, expertsPerLayer,
                futureAccesses ?? throw new ArgumentException("Belady needs the future access sequence (a recorded trace).", nameof(futureAccesses))),
            _ => throw new ArgumentException($"There is no eviction policy named '{name}'; use one of {string.Join(", ", Names)}.", nameof(name)),
        };
}
