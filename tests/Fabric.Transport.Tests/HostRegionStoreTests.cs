using System.Runtime.InteropServices;
using Fabric.Transport.Host;

namespace Fabric.Transport.Tests;

public sealed class HostRegionStoreTests
{
    [Fact]
    public unsafe void Default_RegionsArePageAlignedAndZeroed()
    {
        using var store = new HostRegionStore([new RegionSpec(1, 10_000, 1), new RegionSpec(2, 1, 2)]);
        foreach (var region in store.Regions)
        {
            Assert.Equal(0, (long)region.BaseAddress % 4096);
            Assert.All(region.Slice(0, (int)region.Length).ToArray(), b => Assert.Equal(0, b));
        }
        Assert.Equal(10_001, store.TotalBytes);
    }

    [Fact]
    public unsafe void CustomAllocator_PlacesEveryRegionAndFreesItOnDispose()
    {
        var allocated = new List<(nint, long)>();
        var freed = new List<(nint, long)>();
        var store = new HostRegionStore(
            [new RegionSpec(1, 8192, 1), new RegionSpec(2, 4096, 2)],
            bytes =>
            {
                var pointer = (nint)NativeMemory.AlignedAlloc((nuint)bytes, 2 * 1024 * 1024);
                allocated.Add((pointer, bytes));
                return pointer;
            },
            (pointer, bytes) =>
            {
                freed.Add((pointer, bytes));
                NativeMemory.AlignedFree((void*)pointer);
            });
        Assert.Equal([(8192L), 4096L], allocated.Select(a => a.Item2));
        Assert.Equal(allocated.Select(a => a.Item1), store.Regions.Select(r => (nint)r.BaseAddress));
        store.Dispose();
        Assert.Equal(allocated, freed);
    }

    [Fact]
    public void DuplicateRegionId_Throws()
    {
        Assert.Throws<ArgumentException>(() => new HostRegionStore([new RegionSpec(1, 16, 1), new RegionSpec(1, 16, 2)]));
    }
}
