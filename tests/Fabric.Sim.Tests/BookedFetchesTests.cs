using Fabric.Sim.Run;

namespace Fabric.Sim.Tests;

public sealed class BookedFetchesTests
{
    [Fact]
    public void Landed_ComeOutInTheOrderTheyLand_TiesInTheOrderBooked()
    {
        var booked = new BookedFetches();
        (int Key, long Done)[] fetches = [(1, 500), (2, 100), (3, 300), (4, 100), (5, 900)];
        foreach (var (key, done) in fetches)
            booked.Add(key, done);
        Assert.Equal(300, booked.DoneNs(3));
        Assert.Equal(-1, booked.TakeLanded(99));
        var landed = new List<int>();
        int k;
        while ((k = booked.TakeLanded(500)) >= 0)
            landed.Add(k);
        Assert.Equal([2, 4, 3, 1], landed);
        Assert.Equal(1, booked.Count);
        Assert.Throws<InvalidOperationException>(() => booked.DoneNs(1));
        Assert.Equal(5, booked.TakeLanded(long.MaxValue));
    }

    [Fact]
    public void ManyInFlight_GrowTheListAndKeepTheirOrder()
    {
        var booked = new BookedFetches();
        var random = new Random(3);
        var fetches = Enumerable.Range(0, 200).Select(i => (Key: i, Done: (long)random.Next(1000))).ToList();
        foreach (var (key, done) in fetches)
            booked.Add(key, done);
        var landed = new List<int>();
        int k;
        while ((k = booked.TakeLanded(long.MaxValue)) >= 0)
            landed.Add(k);
        Assert.Equal(fetches.OrderBy(f => f.Done).ThenBy(f => f.Key).Select(f => f.Key), landed);
    }
}
