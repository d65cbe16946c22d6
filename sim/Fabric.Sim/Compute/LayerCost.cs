using Fabric.Model;
using Fabric.Sim.Topology;

namespace Fabric.Sim.Compute;

/// <summary>
/// The roofline cost of one layer visit on one device: attention (QKV/O projections and the KV-cache read over the
/// context) and the routed experts (each distinct expert's weights are read once from HBM; each routed token does
/// 2·3·hidden·intermediate FLOPs), plus the LM head after the last layer and a fixed per-layer overhead. The costs of
/// visits of up to <c>tableRows</c> rows are worked out once (a simulation asks for them at every visit of every engine).
/// </summary>
public sealed class LayerCost
{
    private readonly TopologyNode _device;
    private readonly double _attentionWeightBytes;
    private readonly double _attentionFlopsPerRow;
    private readonly double _kvBytesPerRow;
    private readonly double _expertFlopsPerRoute;
    private readonly double _expertBytes;
    private readonly double _headFlopsPerRow;
    private readonly double _headBytes;
    private readonly long _overheadNs;
    private readonly int _layers;
    private readonly int _experts;
    private readonly (long Time, long ExpertTime)[] _table; // by (head, rows − 1, distinct experts)

    /// <remarks>tableRows: visits of up to this many rows (a decode step's batch) are looked up, not computed.</remarks>
    public LayerCost(ModelConfig model, TopologyNode device, int contextTokens, long overheadNs, int tableRows = 0)
    {
        _device = device;
        var dtype = model.Dtype.ByteSize();
        double h = model.HiddenSize, qd = (double)model.NumAttentionHeads * model.HeadDim, kvd = (double)model.NumKeyValueHeads * model.HeadDim;
        var projection = (h * (qd + (2 * kvd))) + (qd * h);
        _attentionWeightBytes = projection * dtype;
        _attentionFlopsPerRow = (2 * projection) + (4.0 * contextTokens * qd);
        // Keys and values of every KV head, or MLA's latent + rope key (DeepSeek-V2): what the cache holds per position.
        _kvBytesPerRow = (double)contextTokens * model.KvFloatsPerLayerPosition * dtype;
        _expertFlopsPerRoute = 2.0 * model.ExpertElements;
        _expertBytes = model.ExpertBytes;
        _headFlopsPerRow = 2.0 * h * model.VocabSize;
        _headBytes = h * model.VocabSize * dtype;
        _overheadNs = overheadNs;
        _layers = model.ExpertLayers;
        _experts = model.NumLocalExperts;
        TopK = model.NumExpertsPerTok;
        _table = new (long, long)[2 * Math.Max(0, tableRows) * (_experts + 1)];
        for (var head = 0; head < 2; head++)
        {
            for (var rows = 1; rows <= tableRows; rows++)
            {
                for (var distinct = 0; distinct <= _experts; distinct++)
                    _table[TableIndex(head == 1, rows, distinct)] = (Compute(head == 1, rows, distinct), ExpertTime(rows, distinct));
            }
        }
    }

    public int TopK { get; }

    /// <summary>
    /// The share of <see cref="TimeNs"/> spent in the routed experts (the rest is attention, router, head, overhead):
    /// how a visit's time (modelled or recorded) splits into the dense part before the experts and one part per expert.
    /// A recorded visit's time never holds the LM head (the engine runs it after the last layer, outside the visits):
    /// pass <paramref name="withHead"/> false to split such a time.
    /// </summary>
    public double ExpertShare(int layer, int rows, int distinctExperts, bool withHead = true)
    {
        var head = withHead && layer == _layers - 1;
        var (total, experts) = InTable(rows, distinctExperts)
            ? _table[TableIndex(head, rows, distinctExperts)]
            : (Compute(head, rows, distinctExperts), ExpertTime(rows, distinctExperts));
        return total <= 0 ? 0 : experts / (double)total;
    }

    /// <summary>Nanoseconds for <paramref name="rows"/> token positions at <paramref name="layer"/> using <paramref name="distinctExperts"/> experts.</summary>
    public long TimeNs(int layer, int rows, int distinctExperts)
    {
        var head = layer == _layers - 1;
        return InTable(rows, distinctExperts) ? _table[TableIndex(head, rows, distinctExperts)].Time : Compute(head, rows, distinctExperts);
    }

    private bool InTable(int rows, int distinctExperts) =>
        rows >= 1 && (uint)distinctExperts <= (uint)_experts && TableIndex(true, rows, distinctExperts) < _table.Length;

    private int TableIndex(bool head, int rows, int distinctExperts) =>
        (((rows - 1) * 2) + (head ? 1 : 0)) * (_experts + 1) + distinctExperts;

    private long Compute(bool head, int rows, int distinctExperts)
    {
        var t = Roofline.TimeNs(_device, rows * _attentionFlopsPerRow, _attentionWeightBytes + (rows * _kvBytesPerRow))
            + ExpertTime(rows, distinctExperts)
            + _overheadNs;
        if (head)
            t += Roofline.TimeNs(_device, rows * _headFlopsPerRow, _headBytes);
        return t;
    }

    private long ExpertTime(int rows, int distinctExperts) =>
        Roofline.TimeNs(_device, rows * TopK * _expertFlopsPerRoute, distinctExperts * _expertBytes);
}
