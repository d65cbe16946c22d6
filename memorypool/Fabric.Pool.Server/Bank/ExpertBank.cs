using System.Diagnostics;
using System.IO.Hashing;
using System.Security.Cryptography;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Transport;
using Fabric.Transport.Shm;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Pool.Server.Bank;

/// <summary>How and where a bank is loaded.</summary>
public sealed record BankOptions
{
    /// <summary>Makes the store that will own the regions (a <see cref="ShmRegionStore"/> to serve over shm); null puts them in host memory (<see cref="HostPlacement"/>).</summary>
    public Func<IReadOnlyList<RegionSpec>, RegionStore>? CreateStore { get; init; }

    /// <summary>Bind the regions' pages to this NUMA node before loading (libnuma); null leaves placement to the kernel.</summary>
    public int? NumaNode { get; init; }

    /// <summary>Cap on one expert region, in bytes.</summary>
    public long MaxRegionBytes { get; init; } = BankLayout.DefaultMaxRegionBytes;

    /// <summary>The largest single read from a checkpoint file, in bytes.</summary>
    public int ReadChunkBytes { get; init; } = 16 << 20;

    /// <summary>Reader threads; 0 means one per core, at most 4.</summary>
    public int ReaderThreads { get; init; }

    /// <summary>Which routed experts (layer, expert) this bank holds; null holds every one. Dense tensors are always held.</summary>
    public Func<int, int, bool>? HoldsExpert { get; init; }

    /// <summary>Receives the bytes loaded so far.</summary>
    public IProgress<long>? Progress { get; init; }
}

/// <summary>What loading cost: bytes copied from the checkpoint and the seconds spent placing pages, reading and hashing.</summary>
public sealed record BankLoadStats(long Bytes, double TotalSeconds)
{
    /// <summary>Load bandwidth in GB/s (10^9 bytes).</summary>
    public double GigabytesPerSecond => Bytes / 1e9 / Math.Max(TotalSeconds, 1e-9);
}

/// <summary>
/// A checkpoint's experts and dense tensors loaded into exported regions (<see cref="BankLayout"/>), each with an
/// xxHash64, and the <see cref="CatalogReply"/> that describes them. Owns its <see cref="Store"/>.
/// </summary>
public sealed class ExpertBank : IDisposable
{
    private ExpertBank(BankLayout? layout, RegionStore store, CatalogReply catalog, BankLoadStats stats)
    {
        Layout = layout;
        Store = store;
        Catalog = catalog;
        LoadStats = stats;
    }

    /// <summary>The layout computed from the checkpoint; null for a bank served from an image (the image holds the layout).</summary>
    public BankLayout? Layout { get; }

    /// <summary>The regions; valid until the bank is disposed.</summary>
    public RegionStore Store { get; }

    public CatalogReply Catalog { get; }

    public BankLoadStats LoadStats { get; }

    /// <summary>Bytes resident in the regions (padding included).</summary>
    public long ResidentBytes => Store.TotalBytes;

    /// <summary>
    /// Lays out <paramref name="checkpoint"/>, creates the regions, streams every tensor into place with large reads on
    /// several threads, and hashes each expert and dense tensor.
    /// </summary>
    public static ExpertBank Load(Checkpoint checkpoint, BankOptions? options = null)
    {
        options ??= new BankOptions();
        if (options.NumaNode is { } node)
            NumaPlacement.EnsureNode(node);
        var layout = BankLayout.Compute(checkpoint, options.MaxRegionBytes, options.HoldsExpert);
        var specs = layout.RegionLengths.Select((length, i) => new RegionSpec((uint)(i + 1), length, RandomKey())).ToList();
        // The load time a person waits for includes setting the memory aside and faulting it in, not just the reads.
        var watch = Stopwatch.StartNew();
        var store = options.CreateStore is null ? HostPlacement.CreateStore(specs, options.NumaNode) : options.CreateStore(specs);
        try
        {
            if (options.CreateStore is not null && options.NumaNode is { } n)
                foreach (var r in store.Regions)
                    BindRegion(r, n);
            HostPlacement.Prefault(store.Regions, ReaderThreads(options));
            var hashes = new ulong[layout.Experts.Count + layout.Dense.Count];
            var bytes = ReadAll(layout, store, options, hashes);
            var seconds = watch.Elapsed.TotalSeconds;
            return new ExpertBank(layout, store, BuildCatalog(layout, store, hashes), new BankLoadStats(bytes, seconds));
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A bank whose regions are already filled (a mapped bank image): takes ownership of <paramref name="store"/> and
    /// serves <paramref name="catalog"/>, whose region keys must be the store's.
    /// </summary>
    public static ExpertBank FromFilledStore(RegionStore store, CatalogReply catalog, BankLoadStats stats) => new(null, store, catalog, stats);

    /// <summary>A random region key, new for every start.</summary>
    public static ulong NewRegionKey() => RandomKey();

    public void Dispose() => Store.Dispose();

    private static int ReaderThreads(BankOptions options) =>
        options.ReaderThreads > 0 ? options.ReaderThreads : Math.Clamp(Environment.ProcessorCount, 1, 4);

    private static unsafe void BindRegion(ExportedRegion region, int node) =>
        NumaPlacement.Bind((nint)region.BaseAddress, (nuint)region.Length, node);

    private static ulong RandomKey()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes);
    }

    /// <summary>One thing to load and hash: an expert (three tensors, contiguous in the bank) or a dense tensor.</summary>
    private sealed record LoadItem(TensorEntry[] Parts, Placement Target, int HashIndex);

    /// <summary>
    /// Loads every expert and dense tensor, one item per worker at a time in file order, reading each part straight
    /// into the region with reads of at most <see cref="BankOptions.ReadChunkBytes"/> and hashing each chunk while it
    /// is still in cache. Returns the bytes loaded; <paramref name="hashes"/> gets one xxHash64 per item.
    /// </summary>
    private static long ReadAll(BankLayout layout, RegionStore store, BankOptions options, ulong[] hashes)
    {
        var checkpoint = layout.Checkpoint;
        var items = new List<LoadItem>(hashes.Length);
        for (var i = 0; i < checkpoint.Experts.Count; i++)
        {
            var e = checkpoint.Experts[i];
            if (layout.Experts[i].Length > 0)
                items.Add(new LoadItem([e.Gate, e.Up, e.Down], layout.Experts[i], i));
        }
        for (var i = 0; i < checkpoint.Dense.Count; i++)
            items.Add(new LoadItem([checkpoint.Dense[i]], layout.Dense[i], checkpoint.Experts.Count + i));
        items.Sort((a, b) => a.Parts[0].File != b.Parts[0].File
            ? string.CompareOrdinal(a.Parts[0].File, b.Parts[0].File)
            : a.Parts[0].Offset.CompareTo(b.Parts[0].Offset));

        var handles = checkpoint.Files.ToDictionary(f => f.Path, f => File.OpenHandle(f.Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan), StringComparer.Ordinal);
        try
        {
            var threads = ReaderThreads(options);
            long loaded = 0;
            var next = -1;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                var hasher = new XxHash64();
                int i;
                while ((i = Interlocked.Increment(ref next)) < items.Count)
                {
                    var item = items[i];
                    var region = store.Find(item.Target.RegionId)!;
                    var offset = item.Target.Offset;
                    hasher.Reset();
                    foreach (var part in item.Parts)
                    {
                        for (long done = 0; done < part.Length; done += options.ReadChunkBytes)
                        {
                            var length = (int)Math.Min(options.ReadChunkBytes, part.Length - done);
                            var destination = region.Slice(offset, length);
                            ReadExactly(handles[part.File], part, destination, part.Offset + done);
                            hasher.Append(destination);
                            offset += length;
                            var total = Interlocked.Add(ref loaded, length);
                            options.Progress?.Report(total);
                        }
                    }
                    hashes[item.HashIndex] = hasher.GetCurrentHashAsUInt64();
                }
            });
            return loaded;
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0 && e.InnerExceptions[0] is FabricException or IOException)
        {
            throw e.InnerExceptions[0];
        }
        finally
        {
            foreach (var h in handles.Values)
                h.Dispose();
        }
    }

    private static void ReadExactly(SafeFileHandle handle, TensorEntry tensor, Span<byte> destination, long offset)
    {
        while (destination.Length > 0)
        {
            var n = RandomAccess.Read(handle, destination, offset);
            if (n == 0)
                throw new CheckpointException($"{tensor.File}: tensor {tensor.Name} ends early; the file was truncated while loading.");
            destination = destination[n..];
            offset += n;
        }
    }

    private static CatalogReply BuildCatalog(BankLayout layout, RegionStore store, ulong[] hashes)
    {
        var checkpoint = layout.Checkpoint;
        var expertHashes = hashes.AsSpan(0, layout.Experts.Count);
        var denseHashes = hashes.AsSpan(layout.Experts.Count);

        var experts = new ExpertEntry[expertHashes.Length];
        for (var i = 0; i < experts.Length; i++)
        {
            var e = checkpoint.Experts[i];
            var p = layout.Experts[i];
            experts[i] = new ExpertEntry(e.Layer, e.Expert, p.RegionId, p.Offset, p.Length, expertHashes[i],
                Part(e.Gate, 0), Part(e.Up, e.Gate.Length), Part(e.Down, e.Gate.Length + e.Up.Length));
        }
        var dense = new DenseEntry[denseHashes.Length];
        for (var i = 0; i < dense.Length; i++)
        {
            var t = checkpoint.Dense[i];
            var p = layout.Dense[i];
            dense[i] = new DenseEntry(t.Name, p.RegionId, p.Offset, p.Length, t.Shape, t.Dtype, denseHashes[i]);
        }
        var regions = store.Regions.Select(r => new RegionInfo(r.Id, r.Key, r.Length)).ToArray();
        return new CatalogReply(checkpoint.Config, regions, experts, dense);

        static ExpertPart Part(TensorEntry t, long offset) => new(offset, t.Shape, t.Dtype, t.Length);
    }
}
