namespace Fabric.Engine.Paging;

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
    public override void OnLayerVisit(int layer)
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
