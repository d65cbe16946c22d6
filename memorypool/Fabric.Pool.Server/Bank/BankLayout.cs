using Fabric.Model;

namespace Fabric.Pool.Server.Bank;

/// <summary>Where one tensor of the checkpoint goes in the bank: region, offset (bytes) and length (bytes).</summary>
public readonly record struct Placement(uint RegionId, long Offset, long Length);

/// <summary>
/// The bank's layout, computed from a checkpoint without reading any tensor data: every routed expert packed
/// contiguously (gate, up, down) at a 4 KiB-aligned offset of an expert region (regions hold whole experts and at
/// most <see cref="MaxRegionBytes"/> unless one expert is larger), then every dense tensor, 4 KiB aligned, in a
/// region of its own.
/// </summary>
public sealed class BankLayout
{
    /// <summary>Alignment of every expert and dense tensor in its region, in bytes.</summary>
    public const int Alignment = 4096;

    /// <summary>The default cap on an expert region's size, in bytes.</summary>
    public const long DefaultMaxRegionBytes = 1L << 30;

    private BankLayout(Checkpoint checkpoint, long maxRegionBytes, Placement[] experts, Placement[] dense, List<long> regionBytes, uint denseRegion)
    {
        Checkpoint = checkpoint;
        MaxRegionBytes = maxRegionBytes;
        Experts = experts;
        Dense = dense;
        RegionLengths = regionBytes;
        DenseRegionId = denseRegion;
    }

    public Checkpoint Checkpoint { get; }

    public long MaxRegionBytes { get; }

    /// <summary>One placement per expert, in <see cref="Checkpoint.Experts"/> order (layer-major).</summary>
    public IReadOnlyList<Placement> Experts { get; }

    /// <summary>One placement per dense tensor, in <see cref="Checkpoint.Dense"/> order.</summary>
    public IReadOnlyList<Placement> Dense { get; }

    /// <summary>Length in bytes of region id i + 1 (ids start at 1; the last region holds the dense tensors).</summary>
    public IReadOnlyList<long> RegionLengths { get; }

    /// <summary>The id of the dense tensors' region.</summary>
    public uint DenseRegionId { get; }

    /// <summary>Bytes of all regions, padding included.</summary>
    public long TotalBytes => RegionLengths.Sum();

    /// <summary>
    /// Lays out <paramref name="checkpoint"/>. With <paramref name="holdsExpert"/> (layer, expert) only the experts it
    /// accepts are placed (a shard); the others get an empty placement (region 0, length 0).
    /// </summary>
    public static BankLayout Compute(Checkpoint checkpoint, long maxRegionBytes = DefaultMaxRegionBytes, Func<int, int, bool>? holdsExpert = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRegionBytes, Alignment);
        var regions = new List<long>();
        var experts = new Placement[checkpoint.Experts.Count];
        long used = 0;
        for (var i = 0; i < experts.Length; i++)
        {
            var bytes = checkpoint.Experts[i].Bytes;
            if (holdsExpert is not null && !holdsExpert(checkpoint.Experts[i].Layer, checkpoint.Experts[i].Expert))
                continue;
            if (regions.Count == 0 || (used > 0 && used + bytes > maxRegionBytes))
            {
                if (regions.Count > 0)
                    regions[^1] = used;
                regions.Add(0);
                used = 0;
            }
            experts[i] = new Placement((uint)regions.Count, used, bytes);
            used = Align(used + bytes);
        }
        if (regions.Count > 0)
            regions[^1] = used;

        var denseRegion = (uint)regions.Count + 1;
        var dense = new Placement[checkpoint.Dense.Count];
        used = 0;
        for (var i = 0; i < dense.Length; i++)
        {
            dense[i] = new Placement(denseRegion, used, checkpoint.Dense[i].Length);
            used = Align(used + checkpoint.Dense[i].Length);
        }
        regions.Add(Math.Max(used, Alignment));
        return new BankLayout(checkpoint, maxRegionBytes, experts, dense, regions, denseRegion);
    }

    /// <summary>Rounds <paramref name="bytes"/> up to <see cref="Alignment"/>.</summary>
    public static long Align(long bytes) => (bytes + Alignment - 1) & ~(long)(Alignment - 1);
}
