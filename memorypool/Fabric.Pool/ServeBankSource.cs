using System.Globalization;
using Fabric.Cli;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Pool.Server.Bank;
using Fabric.Pool.Server.Image;
using Fabric.Transport.Shm;

namespace Fabric.Pool;

/// <summary>Where <c>serve</c> takes its bank from: a checkpoint (<c>--model</c>), a bank image (<c>--image</c>), or a checkpoint through an image cache (<c>--image-cache</c>).</summary>
internal sealed record ServeBankSource(string? ModelDir, string? ImagePath, string? ImageCacheDir)
{
    private Checkpoint? _checkpoint;
    private ulong? _fingerprint;
    private string? _cachedImage;

    /// <summary>The image path served as shm in place (on /dev/shm or a DAX device), or null. Valid after <see cref="Check"/>.</summary>
    public string? InPlaceShmPath { get; private set; }

    /// <summary>Checks the combination of options before anything is bound or written; one sentence when it is wrong.</summary>
    public void Check(string? shmPath, int? numaNode, bool sharded)
    {
        if (ModelDir is null && ImagePath is null)
            throw new FabricException("Give --model DIR (a checkpoint) or --image FILE (a bank image written by 'fabric pool convert').");
        if (ImagePath is not null && ImageCacheDir is not null)
            throw new FabricException("--image and --image-cache do not go together: --image serves one image, --image-cache converts --model into the cache on first start.");
        if (ImageCacheDir is not null && ModelDir is null)
            throw new FabricException("--image-cache needs --model DIR: the cache holds images converted from that checkpoint.");
        if (ImageCacheDir is not null && !Directory.Exists(ImageCacheDir))
            throw new FabricException($"--image-cache {ImageCacheDir}: the directory does not exist.");
        if (ImagePath is null && ImageCacheDir is null)
            return;
        if (ImageCacheDir is not null)
        {
            _checkpoint = Checkpoint.Open(ModelDir!);
            _fingerprint = ModelFingerprint.Of(_checkpoint);
            _cachedImage = Path.Combine(ImageCacheDir, ModelFingerprint.Format(_fingerprint.Value) + ".fbank");
            if (BankImage.ServesInPlace(_cachedImage))
                InPlaceShmPath = _cachedImage;
        }
        if (sharded)
            throw new FabricException("--shard serves a share of a checkpoint's experts: give --model DIR without --image or --image-cache.");
        if (numaNode is not null)
            throw new FabricException("--numa-node does not apply to a bank image: its pages are the page cache's; place the image on the node's memory instead, or serve --model without an image.");
        if (ImagePath is not null && BankImage.ServesInPlace(ImagePath))
            InPlaceShmPath = ImagePath;
        if (shmPath is not null && shmPath != InPlaceShmPath)
            throw new FabricException($"--shm {shmPath} does not go with a bank image: an image on /dev/shm (or a DAX device) is served as shm in place, so put the image there instead.");
        if (ImagePath is not null)
            BankImage.ReadHeader(ImagePath);
    }

    /// <summary>The model's fingerprint; valid after <see cref="Open"/>.</summary>
    public ulong Fingerprint { get; private set; }

    /// <summary>The name the pool registers the model under by default: the checkpoint directory's, else the image file's.</summary>
    public string ModelName => ModelDir is not null
        ? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(ModelDir)))
        : Path.GetFileNameWithoutExtension(ImagePath!);

    /// <summary>Loads or maps the bank (only the experts <paramref name="holdsExpert"/> accepts, from a checkpoint) and says how on stdout.</summary>
    public ExpertBank Open(string? shmPath, int? numaNode, long maxRegionBytes, Func<int, int, bool>? holdsExpert = null)
    {
        if (ImagePath is null && ImageCacheDir is null)
        {
            var model = Checkpoint.Open(ModelDir!);
            Fingerprint = ModelFingerprint.Of(model);
            return LoadCheckpoint(model, shmPath, numaNode, maxRegionBytes, holdsExpert);
        }

        string image;
        var fingerprint = _fingerprint;
        if (_cachedImage is not null && _checkpoint is { } checkpoint)
        {
            image = _cachedImage;
            if (!IsSound(image))
            {
                var stats = ProgressDisplay.RunBytes("converting", checkpoint.ExpertBytes + checkpoint.DenseBytes,
                    progress => BankImageWriter.Write(checkpoint, image, maxRegionBytes, progress));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"converted {ModelDir} into {image} ({stats.ImageBytes / 1e9:F3} GB in {stats.Seconds:F2} s)"));
            }
        }
        else
        {
            image = ImagePath!;
            if (ModelDir is not null)
                fingerprint = ModelFingerprint.Of(Checkpoint.Open(ModelDir));
        }
        var bank = BankImage.Open(image, InPlaceShmPath is not null, fingerprint, ModelDir);
        Fingerprint = fingerprint ?? BankImage.ReadHeader(image).Fingerprint;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"mapped image {image}: {bank.Catalog.Experts.Length} experts + {bank.Catalog.Dense.Length} dense tensors, {bank.ResidentBytes / 1e9:F3} GB in {bank.LoadStats.TotalSeconds:F2} s (no copy; engines verify checksums on fetch)"));
        return bank;
    }

    private static bool IsSound(string image)
    {
        if (!File.Exists(image))
            return false;
        try
        {
            BankImage.ReadHeader(image);
            return true;
        }
        catch (FabricException e)
        {
            Console.Error.WriteLine($"fabric-pool: the cached image is unusable ({e.Message.TrimEnd('.')}); converting again.");
            return false;
        }
    }

    private static ExpertBank LoadCheckpoint(Checkpoint checkpoint, string? shmPath, int? numaNode, long maxRegionBytes, Func<int, int, bool>? holdsExpert)
    {
        var total = checkpoint.DenseBytes + checkpoint.Experts.Where(e => holdsExpert?.Invoke(e.Layer, e.Expert) ?? true).Sum(e => e.Bytes);
        var bank = ProgressDisplay.RunBytes("loading bank", total, progress => ExpertBank.Load(checkpoint, new BankOptions
        {
            CreateStore = shmPath is null ? null : specs => new ShmRegionStore(shmPath, specs),
            NumaNode = numaNode,
            MaxRegionBytes = maxRegionBytes,
            HoldsExpert = holdsExpert,
            Progress = progress,
        }));
        var stats = bank.LoadStats;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"loaded {bank.Catalog.Experts.Count(e => e.Length > 0)} experts + {bank.Catalog.Dense.Length} dense tensors, {stats.Bytes / 1e9:F3} GB in {stats.TotalSeconds:F2} s ({stats.GigabytesPerSecond:F2} GB/s, xxHash64 included)"));
        return bank;
    }
}
