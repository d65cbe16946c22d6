namespace Fabric.Engine.Paging;

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
