namespace Fabric.Sim.Workloads;

/// <summary>
/// One engine's synthetic routing: each choice of a sequence is, in order of precedence, (1) with
/// <c>temporalReuse</c> an expert this sequence used at this layer in the previous step, (2) with <c>crossLayer</c>
/// the image of the same slot's expert in the previous layer under the model's cross-layer mapping, or (3) a draw
/// from the model's per-layer popularity (<see cref="ExpertPopularity"/>, shared by every engine of a workload).
/// Choices within a token are distinct.
/// </summary>
public sealed class SyntheticRouting : IRoutingSource
{
    private readonly int _topK;
    private readonly int _batch;
    private readonly double _temporalReuse;
    private readonly double _crossLayer;
    private readonly Random _random;
    private readonly ExpertPopularity _popularity;
    private readonly int[] _previousStep; // layer by layer, each layer's batch × top-k choices of the previous step
    private readonly int[] _previousLayer;
    private bool _haveLayer;

    /// <summary>A routing with a popularity of its own, chosen by <paramref name="seed"/> (one engine alone, tests).</summary>
    public SyntheticRouting(int layers, int experts, int topK, int batch, int seed, double zipf = 0,
        double temporalReuse = 0, double crossLayer = 0, IReadOnlyList<double[]>? weights = null)
        : this(new ExpertPopularity(layers, experts, seed, zipf, weights), topK, batch, seed, temporalReuse, crossLayer)
    {
    }

    /// <summary>One engine's token stream (<paramref name="seed"/>) over a popularity it shares with the others.</summary>
    public SyntheticRouting(ExpertPopularity popularity, int topK, int batch, int seed, double temporalReuse = 0, double crossLayer = 0)
    {
        _popularity = popularity;
        _topK = topK;
        _batch = batch;
        _temporalReuse = temporalReuse;
        _crossLayer = crossLayer;
        _random = new Random(seed);
        _previousStep = new int[popularity.Layers * batch * topK];
        _previousLayer = new int[batch * topK];
    }

    public long RecordedComputeNs(int step, int layer) => -1;

    public long RecordedOutsideNs(int step) => 0;

    public int MaxRows => _batch;

    public int Next(int step, int layer, Span<int> experts)
    {
        var prevStep = _previousStep.AsSpan(layer * _batch * _topK, _batch * _topK);
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
                        candidate = _popularity.Follow(layer, _previousLayer[(b * _topK) + k]);
                    else
                        candidate = _popularity.Draw(layer, _random.NextDouble());
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
}
