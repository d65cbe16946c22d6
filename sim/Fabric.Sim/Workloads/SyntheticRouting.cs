namespace Fabric.Sim.Workloads;

/// <summary>
/// Synthetic routing: each layer has a Zipf popularity over its experts (a per-layer random ranking), and each choice
/// of a sequence is, in order of precedence, (1) with <c>temporalReuse</c> an expert this sequence used at this layer
/// in the previous step, (2) with <c>crossLayer</c> the image of the same slot's expert in the previous layer under a
/// fixed per-layer mapping, or (3) a draw from the popularity. Choices within a token are distinct. With
/// <c>weights</c> given, the popularity is those weights per layer instead of Zipf (the counts workload).
/// </summary>
public sealed class SyntheticRouting : IRoutingSource
{
    private readonly int _layers;
    private readonly int _experts;
    private readonly int _topK;
    private readonly int _batch;
    private readonly double _temporalReuse;
    private readonly double _crossLayer;
    private readonly Random _random;
    private readonly double[][] _cumulative;
    private readonly int[][] _mapping;
    private readonly int[][] _previousStep;
    private readonly int[] _previousLayer;
    private bool _haveLayer;

    public SyntheticRouting(int layers, int experts, int topK, int batch, int seed, double zipf = 0,
        double temporalReuse = 0, double crossLayer = 0, IReadOnlyList<double[]>? weights = null)
    {
        _layers = layers;
        _experts = experts;
        _topK = topK;
        _batch = batch;
        _temporalReuse = temporalReuse;
        _crossLayer = crossLayer;
        _random = new Random(seed);
        var structure = new Random(unchecked(seed * 7919 + 17));
        _cumulative = new double[layers][];
        _mapping = new int[layers][];
        for (var l = 0; l < layers; l++)
        {
            var w = new double[experts];
            if (weights is not null)
            {
                var src = weights[l % weights.Count];
                for (var e = 0; e < experts; e++)
                    w[e] = e < src.Length ? Math.Max(src[e], 0) : 0;
            }
            else
            {
                var rank = Enumerable.Range(0, experts).ToArray();
                structure.Shuffle(rank);
                for (var e = 0; e < experts; e++)
                    w[rank[e]] = 1 / Math.Pow(e + 1, zipf);
            }
            var total = w.Sum();
            var c = new double[experts];
            var acc = 0.0;
            for (var e = 0; e < experts; e++)
            {
                acc += w[e] / total;
                c[e] = acc;
            }
            c[^1] = 1.0;
            _cumulative[l] = c;
            var map = Enumerable.Range(0, experts).ToArray();
            structure.Shuffle(map);
            _mapping[l] = map;
        }
        _previousStep = new int[layers][];
        for (var l = 0; l < layers; l++)
            _previousStep[l] = new int[batch * topK];
        _previousLayer = new int[batch * topK];
    }

    /// <summary>The probability of each expert of <paramref name="layer"/> under the popularity alone.</summary>
    public double Popularity(int layer, int expert) =>
        _cumulative[layer][expert] - (expert == 0 ? 0 : _cumulative[layer][expert - 1]);

    public long RecordedComputeNs(int step, int layer) => -1;

    public long RecordedOutsideNs(int step) => 0;

    public int MaxRows => _batch;

    public int Next(int step, int layer, Span<int> experts)
    {
        var prevStep = _previousStep[layer];
        var firstStep = step == 0;
        for (var b = 0; b < _batch; b++)
        {
            var row = experts.Slice(b * _topK, _topK);
            for (var k = 0; k < _topK; k++)
            {
                var choice = -1;
                for (var attempt = 0; attempt < 16 && choice < 0; attempt++)
                {
                    var u = _random.NextDouble();
                    int candidate;
                    if (!firstStep && u < _temporalReuse)
                        candidate = prevStep[(b * _topK) + _random.Next(_topK)];
                    else if (_haveLayer && u < _temporalReuse + _crossLayer)
                        candidate = _mapping[layer][_previousLayer[(b * _topK) + k]];
                    else
                        candidate = Draw(layer);
                    if (!row[..k].Contains(candidate))
                        choice = candidate;
                }
                if (choice < 0)
                {
                    // Popularity so concentrated that draws keep repeating: take the lowest unused expert.
                    choice = 0;
                    while (row[..k].Contains(choice))
                        choice++;
                }
                row[k] = choice;
            }
        }
        experts[.._previousLayer.Length].CopyTo(_previousLayer);
        experts[..prevStep.Length].CopyTo(prevStep);
        _haveLayer = true;
        return _batch * _topK;
    }

    private int Draw(int layer)
    {
        var c = _cumulative[layer];
        var i = Array.BinarySearch(c, _random.NextDouble());
        return Math.Min(i < 0 ? ~i : i, _experts - 1);
    }
}
