namespace Fabric.Sim.Workloads;

/// <summary>
/// What a model's router favours, the same for every engine serving it: each layer's popularity over its experts
/// (a Zipf law over a random ranking, or given weights) and the fixed cross-layer mapping that makes the next layer's
/// choice follow this one's. The engines' own token streams draw from it (<see cref="SyntheticRouting"/>), so hot
/// experts are hot everywhere, as in a real deployment, and load on the pool nodes holding them piles up accordingly.
/// </summary>
public sealed class ExpertPopularity
{
    private readonly double[][] _cumulative;
    private readonly int[][] _mapping;

    /// <param name="layers">The model's MoE layers.</param>
    /// <param name="experts">Experts per layer.</param>
    /// <param name="seed">Chooses the random rankings and mappings; one per model, not per engine.</param>
    /// <param name="zipf">Skew of each layer's Zipf law; ignored when <paramref name="weights"/> are given.</param>
    /// <param name="weights">Per layer, each expert's relative popularity (layers beyond the list repeat it).</param>
    public ExpertPopularity(int layers, int experts, int seed, double zipf = 0, IReadOnlyList<double[]>? weights = null)
    {
        Layers = layers;
        Experts = experts;
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
    }

    public int Layers { get; }

    public int Experts { get; }

    /// <summary>The probability of each expert of <paramref name="layer"/> under the popularity alone.</summary>
    public double Of(int layer, int expert) =>
        _cumulative[layer][expert] - (expert == 0 ? 0 : _cumulative[layer][expert - 1]);

    /// <summary>The expert of <paramref name="layer"/> that the previous layer's <paramref name="previous"/> leads to.</summary>
    public int Follow(int layer, int previous) => _mapping[layer][previous];

    /// <summary>The expert of <paramref name="layer"/> whose popularity interval holds <paramref name="u"/> in [0, 1).</summary>
    public int Draw(int layer, double u)
    {
        var i = _cumulative[layer].AsSpan().BinarySearch(u);
        return Math.Min(i < 0 ? ~i : i, Experts - 1);
    }
}
