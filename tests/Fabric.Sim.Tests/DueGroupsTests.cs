using Fabric.Sim.Network.MaxMin;

namespace Fabric.Sim.Tests;

/// <summary>The network's due-time heap against a plain sorted reference over random moves, removals and takes.</summary>
public sealed class DueGroupsTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Heap_AlwaysYieldsTheEarliestGroup_ThenTheLowestId_AfterRandomMoves(int seed)
    {
        const int groups = 40;
        var random = new Random(seed);
        var heap = new DueGroups(groups);
        var reference = new Dictionary<int, long>();
        for (var step = 0; step < 20_000; step++)
        {
            var g = random.Next(groups);
            switch (random.Next(4))
            {
                case 0:
                case 1:
                    // Few distinct times, so that ties between groups are common.
                    var at = random.Next(50);
                    heap.Set(g, at);
                    reference[g] = at;
                    break;
                case 2:
                    heap.Remove(g);
                    reference.Remove(g);
                    break;
                default:
                    if (heap.TryPeek(out var first, out var firstAt))
                    {
                        heap.Remove(first);
                        Assert.True(reference.Remove(first, out var expectedAt));
                        Assert.Equal(expectedAt, firstAt);
                    }
                    break;
            }
            Assert.Equal(reference.Count, heap.Count);
            Assert.Equal(reference.TryGetValue(g, out var due) ? due : -1, heap.At(g));
            if (reference.Count > 0)
            {
                var expected = reference.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key).First();
                Assert.True(heap.TryPeek(out var top, out var topAt));
                Assert.Equal((expected.Key, expected.Value), (top, topAt));
            }
            else
            {
                Assert.False(heap.TryPeek(out _, out _));
            }
        }
    }
}
