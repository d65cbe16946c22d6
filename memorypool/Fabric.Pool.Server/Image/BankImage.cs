using System.Diagnostics;
using System.IO.Hashing;
using Fabric.Common;
using Fabric.Pool.Protocol;
using Fabric.Pool.Server.Bank;
using Fabric.Transport;
using Fabric.Transport.Shm;
using MessagePack;

namespace Fabric.Pool.Server.Image;

/// <summary>
/// Serves a bank image without loading it: the header and catalog are read and checked (a few KiB), the file is
/// mapped read-only and shared, and the regions are the page cache's pages — no copy and no re-hash (engines verify
/// every block's xxHash64 on fetch, as they do for any pool). An image on /dev/shm or a DAX device is served as shm
/// in place: the pool writes only the shm header into the slot the image keeps free at its start.
/// </summary>
public static class BankImage
{
    /// <summary>Reads and checks the header of <paramref name="path"/>; one sentence (<see cref="FabricException"/>) when it is not a sound image.</summary>
    public static BankImageHeader ReadHeader(string path)
    {
        using var file = OpenRead(path);
        return ReadHeader(path, file.SafeFileHandle, file.Length);
    }

    /// <summary>Whether an image at <paramref name="path"/> is served as shm in place: it lives on /dev/shm or is a DAX device.</summary>
    public static bool ServesInPlace(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        return full.StartsWith("/dev/shm/", StringComparison.Ordinal) || full.StartsWith("/dev/dax", StringComparison.Ordinal);
    }

    /// <summary>
    /// Maps the image at <paramref name="path"/> as a bank. With <paramref name="inPlaceShm"/> the store is an
    /// <see cref="ShmRegionStore"/> at that path (serve it as <c>shm://PATH</c>); otherwise a read-only mapping.
    /// <paramref name="expectedFingerprint"/>, when given, must match the image's model.
    /// </summary>
    public static ExpertBank Open(string path, bool inPlaceShm, ulong? expectedFingerprint = null, string? expectedFrom = null)
    {
        var watch = Stopwatch.StartNew();
        BankImageHeader header;
        CatalogReply catalog;
        using (var file = OpenRead(path))
        {
            header = ReadHeader(path, file.SafeFileHandle, file.Length);
            if (expectedFingerprint is { } expected && expected != header.Fingerprint)
                throw new FabricException($"{path} was converted from another model (fingerprint {ModelFingerprint.Format(header.Fingerprint)}) than {expectedFrom ?? "the one given"} ({ModelFingerprint.Format(expected)}); convert that model again.");
            catalog = ReadCatalog(path, file.SafeFileHandle, header);
        }
        var placed = header.Regions.Select(r => (Spec: new RegionSpec(r.Id, r.Length, ExpertBank.NewRegionKey()), r.Offset)).ToList();
        RegionStore store;
        if (inPlaceShm)
        {
            store = ShmRegionStore.Adopt(path, placed, BankImageHeader.ShmSlotBytes);
        }
        else
        {
            using var file = OpenRead(path);
            store = new ImageRegionStore(file.SafeFileHandle, header.ImageBytes, placed, writable: false);
        }
        var served = catalog with { Regions = [.. placed.Select(p => new RegionInfo(p.Spec.Id, p.Spec.Key, p.Spec.Length))] };
        return ExpertBank.FromFilledStore(store, served, new BankLoadStats(0, watch.Elapsed.TotalSeconds));
    }

    private static BankImageHeader ReadHeader(string path, Microsoft.Win32.SafeHandles.SafeFileHandle file, long fileBytes)
    {
        var space = new byte[(int)Math.Clamp(fileBytes - BankImageHeader.HeaderOffset, 0, BankImageHeader.HeaderSpace)];
        var read = space.Length == 0 ? 0 : RandomAccess.Read(file, space, BankImageHeader.HeaderOffset);
        if (fileBytes < BankImageHeader.HeaderOffset + 8)
        {
            throw new FabricException(fileBytes >= 8 && LooksLikeNothing(file)
                ? $"{path} is not a Fabric bank image; write one with 'fabric pool convert --model DIR --out {path}'."
                : $"{path} is truncated: {fileBytes} bytes is too short for a bank image header; convert the model again.");
        }
        return BankImageHeader.Parse(path, space.AsSpan(0, read), fileBytes);
    }

    /// <summary>A short file that starts with something other than the zeroed shm slot is not an image at all.</summary>
    private static bool LooksLikeNothing(Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        Span<byte> first = stackalloc byte[8];
        return RandomAccess.Read(file, first, 0) == 8 && BitConverter.ToUInt64(first) != 0;
    }

    private static CatalogReply ReadCatalog(string path, Microsoft.Win32.SafeHandles.SafeFileHandle file, BankImageHeader header)
    {
        var bytes = new byte[header.CatalogBytes];
        if (RandomAccess.Read(file, bytes, header.CatalogOffset) != bytes.Length)
            throw new FabricException($"{path} is truncated: its catalog ends early; convert the model again.");
        if (XxHash64.HashToUInt64(bytes) != header.CatalogChecksum)
            throw BankImageHeader.Corrupt(path, "its catalog checksum does not match");
        CatalogReply catalog;
        try
        {
            catalog = MessagePackSerializer.Deserialize<CatalogReply>(bytes, MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData));
        }
        catch (MessagePackSerializationException e)
        {
            throw BankImageHeader.Corrupt(path, $"its catalog does not parse: {e.Message.TrimEnd('.')}");
        }
        var regions = catalog.Regions.Select(r => (r.Id, r.Length)).Order().ToList();
        if (!regions.SequenceEqual(header.Regions.Select(r => (r.Id, r.Length)).Order()))
            throw BankImageHeader.Corrupt(path, "its catalog and header list different regions");
        return catalog;
    }

    private static FileStream OpenRead(string path)
    {
        if (Directory.Exists(path))
            throw new FabricException($"{path} is a directory, not a bank image; write one with 'fabric pool convert --model {path} --out FILE'.");
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch (FileNotFoundException)
        {
            throw new FabricException($"The bank image {path} does not exist; write one with 'fabric pool convert --model DIR --out {path}'.");
        }
        catch (DirectoryNotFoundException)
        {
            throw new FabricException($"The bank image {path} does not exist; write one with 'fabric pool convert --model DIR --out {path}'.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FabricException($"Cannot open the bank image {path}: {e.Message.TrimEnd('.')}.", e);
        }
    }
}
