using System.Diagnostics;
using System.IO.Hashing;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Pool.Server.Bank;
using Fabric.Transport;
using MessagePack;

namespace Fabric.Pool.Server.Image;

/// <summary>What converting cost: the image written, its size (bytes) and the seconds taken.</summary>
public sealed record ImageWriteStats(string Path, ulong Fingerprint, long ImageBytes, int Experts, int DenseTensors, double Seconds);

/// <summary>
/// Writes a bank image (<see cref="BankImageHeader"/>): the bank laid out and filled exactly as a pool serves it
/// (<see cref="ExpertBank.Load"/> into a shared mapping of the new file, so the 4 KiB-aligned layout and xxHash64s are
/// the served ones), then the catalog, then the header. The file is written under a temporary name beside the
/// target, flushed, and renamed into place, so a crash never leaves a half-written image at the target path.
/// </summary>
public static class BankImageWriter
{
    /// <summary>Converts <paramref name="checkpoint"/> into the image <paramref name="path"/> (replacing any file there).</summary>
    public static ImageWriteStats Write(Checkpoint checkpoint, string path, long maxRegionBytes = BankLayout.DefaultMaxRegionBytes, IProgress<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (path.StartsWith("/dev/dax", StringComparison.Ordinal))
            throw new FabricException($"{path}: write the image to a file (on /dev/shm to serve it as shm in place); a DAX device cannot be written as a file.");
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        if (!Directory.Exists(directory))
            throw new FabricException($"Cannot write {path}: the directory {directory} does not exist.");
        var watch = Stopwatch.StartNew();
        var fingerprint = ModelFingerprint.Of(checkpoint);
        var temporary = $"{path}.new-{Environment.ProcessId}-{Random.Shared.Next():x8}";
        try
        {
            long dataEnd = 0;
            List<ImageRegion> regions = [];
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read))
            {
                ExpertBank bank;
                try
                {
                    bank = ExpertBank.Load(checkpoint, new BankOptions
                    {
                        MaxRegionBytes = maxRegionBytes,
                        Progress = progress,
                        CreateStore = specs =>
                        {
                            if (specs.Count > BankImageHeader.MaxRegions)
                                throw new FabricException($"The bank needs {specs.Count} regions; an image holds at most {BankImageHeader.MaxRegions}: give a larger --max-region-bytes.");
                            var placed = Place(specs);
                            regions = placed.Select(p => new ImageRegion(p.Spec.Id, p.Offset, p.Spec.Length)).ToList();
                            dataEnd = regions.Max(r => BankLayout.Align(r.Offset + r.Length));
                            file.SetLength(dataEnd);
                            return new ImageRegionStore(file.SafeFileHandle, dataEnd, placed, writable: true);
                        },
                    });
                }
                catch (IOException e) when (e is not FileNotFoundException)
                {
                    throw new FabricException($"Cannot write {path}: {e.Message.TrimEnd('.')}.", e);
                }
                using (bank)
                {
                    var catalog = bank.Catalog with { Regions = [.. bank.Catalog.Regions.Select(r => r with { Key = 0 })] };
                    var catalogBytes = MessagePackSerializer.Serialize(catalog, MessagePackSerializerOptions.Standard);
                    var header = new BankImageHeader(BankImageHeader.CurrentVersion, fingerprint, dataEnd + catalogBytes.Length, dataEnd, catalogBytes.Length,
                        XxHash64.HashToUInt64(catalogBytes), BankLayout.Alignment, regions);
                    var headerBytes = new byte[BankImageHeader.Bytes(regions.Count)];
                    header.Write(headerBytes);
                    RandomAccess.Write(file.SafeFileHandle, catalogBytes, dataEnd);
                    RandomAccess.Write(file.SafeFileHandle, headerBytes, BankImageHeader.HeaderOffset);
                    file.Flush(flushToDisk: true);
                    File.Move(temporary, path, overwrite: true);
                    return new ImageWriteStats(path, fingerprint, header.ImageBytes, catalog.Experts.Length, catalog.Dense.Length, watch.Elapsed.TotalSeconds);
                }
            }
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    /// <summary>Each region's offset in the image: after the shm slot and the header space, every one aligned.</summary>
    public static List<(RegionSpec Spec, long Offset)> Place(IReadOnlyList<RegionSpec> specs)
    {
        var placed = new List<(RegionSpec, long)>(specs.Count);
        long next = BankImageHeader.HeaderOffset + BankImageHeader.HeaderSpace;
        foreach (var spec in specs)
        {
            placed.Add((spec, next));
            next = BankLayout.Align(next + Math.Max(spec.Length, 1));
        }
        return placed;
    }
}
