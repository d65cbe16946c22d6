namespace Fabric.Engine.Paging;

/// <summary>
/// An eviction policy that can read ahead what its coming uses and choice of victim will touch (see
/// <see cref="PagerWarmer"/>). Optional: only a driver that keeps many pagers asks for it, never the pager itself.
/// </summary>
public interface IWarmablePolicy
{
    /// <summary>
    /// Reads, without changing anything, the state coming uses of <paramref name="usedSlots"/> and a coming choice of
    /// victim will touch, so that it is in the processor's cache then. Returns a value that depends on what was read.
    /// </summary>
    int Warm(SlotTable slots, ReadOnlySpan<int> usedSlots);
}
