using Fabric.Engine.Paging;

namespace Fabric.Engine.Tests.Paging;

public sealed class SlotTableTests
{
    [Theory]
    [InlineData(65_535)] // the most slots whose numbers (plus one) fit in two bytes
    [InlineData(65_536)] // the fewest that need four
    [InlineData(70_000)]
    public void SlotOf_FindsEveryExpertInItsSlot_OnEitherSideOfTheTwoByteMap(int slots)
    {
        const int experts = 40_000;
        var pager = new ExpertPager(2, experts, slots, new LruPolicy());
        for (var i = 0; i < slots; i++)
            Assert.Equal(i, pager.Preload(new ExpertKey(i / experts, i % experts)).Slot);
        for (var i = 0; i < 2 * experts; i++)
            Assert.Equal(i < slots ? i : -1, pager.Slots.SlotOf(new ExpertKey(i / experts, i % experts)));

        // Emptying the last slot forgets its expert, and the next expert fills it.
        var last = new ExpertKey((slots - 1) / experts, (slots - 1) % experts);
        pager.FetchAbandoned(last);
        Assert.Equal(-1, pager.Slots.SlotOf(last));
        var next = new ExpertKey(slots / experts, slots % experts);
        Assert.Equal(slots - 1, pager.Preload(next).Slot);
        Assert.Equal(slots - 1, pager.Slots.SlotOf(next));
    }
}
