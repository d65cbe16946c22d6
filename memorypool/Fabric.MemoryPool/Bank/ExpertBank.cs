using System.Diagnostics;
using System.IO.Hashing;
using System.Security.Cryptography;
using Fabric.MemoryPool.Catalog;
using Fabric.MemoryPool.Model;
using Fabric.Transport;
using Microsoft.Win32.SafeHandles;

namespace Fabric.MemoryPool.Bank;

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

    /// <summary>Receives the bytes loaded so far.</summary>
    public IProgress<long>? Progress { get; init; }
}

/// <summary>What loading cost: bytes copied from the checkpoint and the seconds spent reading and hashing.</summary>
public sealed record BankLoadStats(long Bytes, double ReadSeconds, double HashSeconds)
{
    public double TotalSeconds => ReadSeconds + HashSeconds;

    /// <summary>Load bandwidth in GB/s (10^9 bytes), reading and hashing together.</summary>
    public double GigabytesPerSecond => Bytes / 1e9 / Math.Max(TotalSeconds, 1e-9);
}

/// <summary>
/// A checkpoint's experts and dense tensors loaded into exported regions (<see cref="BankLayout"/>), each with an
/// xxHash64, and the <see cref="CatalogReply"/> that describes them. Owns its <see cref="Store"/>.
/// </summary>
public sealed class ExpertBank : IDisposable
{
    private ExpertBank(BankLayout layout, RegionStore store, CatalogReply catalog, BankLoadStats stats)
    {
        Layout = layout;
        Store = store;
        Catalog = catalog;
        LoadStats = stats;
    }

    public BankLayout Layout { get; }

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
        var layout = BankLayout.Compute(checkpoint, options.MaxRegionBytes);
        var specs = layout.RegionLengths.Select((length, i) => new RegionSpec((uint)(i + 1), length, RandomKey())).ToList();
        var store = options.CreateStore is null ? HostPlacement.CreateStore(specs, options.NumaNode) : options.CreateStore(specs);
        try
        {
            if (options.CreateStore is not null && options.NumaNode is { } n)
                foreach (var r in store.Regions)
                    BindRegion(r, n);
            var watch = Stopwatch.StartNew();
            var bytes = ReadAll(layout, store, options);
            var readSeconds = watch.Elapsed.TotalSeconds;
            watch.Restart();
            var catalog = BuildCatalog(layout, store);
            return new ExpertBank(layout, store, catalog, new BankLoadStats(bytes, readSeconds, watch.Elapsed.TotalSeconds));
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    public void Dispose() => Store.Dispose();

    private static unsafe void BindRegion(ExportedRegion region, int node) =>
        NumaPlacement.Bind((nint)region.BaseAddress, (nuint)region.Length, node);

    private static ulong RandomKey()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes);
    }

    /// <summary>One read: a piece of a tensor in a file and where it lands.</summary>
    private readonly record struct Piece(int File, string Tensor, long FileOffset, uint Region, long RegionOffset, int Length);

    private static long ReadAll(BankLayout layout, RegionStore store, BankOptions options)
    {
        var checkpoint = layout.Checkpoint;
        var files = checkpoint.Files.Select(f => f.Path).ToList();
        var fileIndex = files.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i, StringComparer.Ordinal);
        var pieces = new List<Piece>();

        void AddTensor(TensorEntry tensor, uint region, long offset)
        {
            for (long done = 0; done < tensor.Length; done += options.ReadChunkBytes)
            {
                var length = (int)Math.Min(options.ReadChunkBytes, tensor.Length - done);
                pieces.Add(new Piece(fileIndex[tensor.File], tensor.Name, tensor.Offset + done, region, offset + done, length));
            }
        }

        for (var i = 0; i < checkpoint.Experts.Count; i++)
        {
            var e = checkpoint.Experts[i];
            var p = layout.Experts[i];
            AddTensor(e.Gate, p.RegionId, p.Offset);
            AddTensor(e.Up, p.RegionId, p.Offset + e.Gate.Length);
            AddTensor(e.Down, p.RegionId, p.Offset + e.Gate.Length + e.Up.Length);
        }
        for (var i = 0; i < checkpoint.Dense.Count; i++)
            AddTensor(checkpoint.Dense[i], layout.Dense[i].RegionId, layout.Dense[i].Offset);

        // File order keeps each reader's reads sequential in the page cache.
        pieces.Sort((a, b) => a.File != b.File ? a.File.CompareTo(b.File) : a.FileOffset.CompareTo(b.FileOffset));

        var handles = files.Select(p => File.OpenHandle(p, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan)).ToArray();
        try
        {
            long loaded = 0;
            var next = -1;
            var threads = options.ReaderThreads > 0 ? options.ReaderThreads : Math.Clamp(Environment.ProcessorCount, 1, 4);
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < pieces.Count)
                {
                    var piece = pieces[i];
                    var destination = store.Find(piece.Region)!.Slice(piece.RegionOffset, piece.Length);
                    ReadExactly(handles[piece.File], files[piece.File], piece.Tensor, destination, piece.FileOffset);
                    var total = Interlocked.Add(ref loaded, piece.Length);
                    options.Progress?.Report(total);
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
            foreach (var h in handles)
                h.Dispose();
        }
    }

    private static void ReadExactly(SafeFileHandle handle, string path, string tensor, Span<byte> destination, long offset)
    {
        while (destination.Length > 0)
        {
            var n = RandomAccess.Read(handle, destination, offset);
            if (n == 0)
                throw new CheckpointException($"{path}: tensor {tensor} ends early; the file was truncated while loading.");
            destination = destination[n..];
            offset += n;
        }
    }

    private static unsafe ulong Hash(RegionStore store, Placement p) =>
        XxHash64.HashToUInt64(new ReadOnlySpan<byte>(store.Find(p.RegionId)!.BaseAddress + p.Offset, checked((int)p.Length)));

    private static CatalogReply BuildCatalog(BankLayout layout, RegionStore store)
    {
        var checkpoint = layout.Checkpoint;
        var expertHashes = new ulong[layout.Experts.Count];
        var denseHashes = new ulong[layout.Dense.Count];
        Parallel.For(0, expertHashes.Length + denseHashes.Length, i =>
        {
            if (i < expertHashes.Length)
                expertHashes[i] = Hash(store, layout.Experts[i]);
            else
                denseHashes[i - expertHashes.Length] = Hash(store, layout.Dense[i - expertHashes.Length]);
        });

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
