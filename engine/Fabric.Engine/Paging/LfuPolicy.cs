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
