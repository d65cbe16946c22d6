
namespace Fabric.Sim.Network.MaxMin;

/// <summary>One transfer of a <see cref="FlowNetwork"/>: where it goes, how far it has got, and its place in its group.</summary>
internal struct FlowState
{
    public int[] Route; // every channel it crosses (bytes carried are counted on all)
    public int[] Channels; // the ones it is shared on
    public int[] Positions; // index of this flow in each of its channels' flow lists (O(1) removal)
    public long Bytes;
    public double Remaining; // bytes left while in no group (waiting out its latency or for its first share)
    public int Group; // the channel that is its bottleneck, -1 while it has no share
    public double FinishAt; // the group's bytes-served count at which this flow is done
    public int Version; // changes when the flow is reused or leaves a group (its heap entries go stale)
    public bool Active;
    public bool InUse;
    public IFlowListener Listener;
    public long Tag;

    // Scratch of one recomputation (MaxMinFill).
    public int NewGroup;
}
