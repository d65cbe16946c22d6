using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Server.Bank;
using Fabric.Transport;
using Fabric.Transport.Shm;

namespace Fabric.Bench;

/// <summary>
/// <c>bench load [--model DIR | --preset small] [--repeat N] [--json PATH]</c>: bank load from a warm page cache
/// (host memory and a /dev/shm file) beside a plain sequential read of the same files in the same run.
/// </summary>
public sealed class LoadBenchmark : IBenchmark
{
    public string Name => "load";

    public string Summary => "expert bank load vs a plain sequential read of the same checkpoint files (warm page cache)";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = new BenchOptions(Name, args, ["--model", "--preset", "--repeat", "--json"]);
        if (options.Has("--help"))
        {
            Console.WriteLine("usage: fabric bench load [--model DIR | --preset tiny|small|medium] [--repeat N] [--json PATH]");
            return 0;
        }
        var repeat = options.Int("--repeat", 3);
        var directory = ModelCache.Resolve(options.Text("--model"), options.Text("--preset") ?? "small");
        var checkpoint = Checkpoint.Open(directory);
        var files = checkpoint.Files.Select(f => f.Path).ToList();
        var fileBytes = files.Sum(f => new FileInfo(f).Length);

        SequentialRead(files);
        var plain = new List<double>();
        var host = new List<double>();
        var shm = new List<double>();
        var hostOneThread = new List<double>();
        for (var r = 0; r < repeat; r++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            plain.Add(fileBytes / 1e9 / SequentialRead(files));
            // Alternate which goes first: the first fresh allocation of a run can cost more (a VM backing guest memory lazily).
            for (var k = 0; k < 2; k++)
            {
                if ((k + r) % 2 == 0)
                {
                    using var bank = ExpertBank.Load(checkpoint);
                    host.Add(bank.LoadStats.GigabytesPerSecond);
                }
                else
                {
                    using var bank = ExpertBank.Load(checkpoint, new BankOptions { ReaderThreads = 1 });
                    hostOneThread.Add(bank.LoadStats.GigabytesPerSecond);
                }
            }
            var path = $"/dev/shm/fabric-bench-load-{Environment.ProcessId}";
            try
            {
                using var bank = ExpertBank.Load(checkpoint, new BankOptions { CreateStore = specs => new ShmRegionStore(path, specs) });
                shm.Add(bank.LoadStats.GigabytesPerSecond);
            }
            finally
            {
                File.Delete(path);
            }
        }

        var touch = FirstTouch(fileBytes);
        var image = await ImageLoadRows.MeasureAsync(checkpoint, repeat, cancellationToken);
        var baseline = Median(plain);
        Console.WriteLine($"model {directory}: {fileBytes / 1e9:F3} GB in {files.Count} file(s), {checkpoint.Experts.Count} experts; median of {repeat} runs, warm page cache");
        Console.WriteLine();
        Console.WriteLine($"{"what",-44} {"GB/s",8} {"× plain read",13}");
        Row("plain sequential read (16 MiB, 1 thread)", baseline);
        Row("bank load, host memory (read + xxHash64)", Median(host));
        Row("bank load, host memory, 1 reader thread", Median(hostOneThread));
        Row("bank load, /dev/shm file (read + xxHash64)", Median(shm));
        Row("floor: first touch of as much fresh memory", touch);
        Console.WriteLine();
        Console.WriteLine($"{"pool start to /healthz (process start)",-44} {"s",8} {"× image",13}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"serve --model (safetensors)",-44} {image.ModelStartSeconds,8:F2} {image.ModelStartSeconds / image.ImageStartSeconds,12:F2}×"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"serve --image (bank image)",-44} {image.ImageStartSeconds,8:F2} {1,12:F2}×"));
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{$"image ({image.ImageBytes / 1e9:F3} GB) reads",-44} {"GB/s",8} {"× plain read",13}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"plain sequential read of the image",-44} {image.ImagePlainReadGbps,8:F2} {1,12:F2}×"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"first read of the freshly mapped image",-44} {image.ImageFirstReadGbps,8:F2} {image.ImageFirstReadGbps / image.ImagePlainReadGbps,12:F2}×"));

        if (options.Text("--json") is { } json)
        {
            File.WriteAllText(json, JsonSerializer.Serialize(new
            {
                model = directory,
                bytes = fileBytes,
                plain_read_gbps = baseline,
                bank_host_gbps = Median(host),
                bank_host_one_thread_gbps = Median(hostOneThread),
                bank_shm_gbps = Median(shm),
                first_touch_gbps = touch,
                ratio_host = Median(host) / baseline,
                ratio_shm = Median(shm) / baseline,
                start_model_seconds = image.ModelStartSeconds,
                start_image_seconds = image.ImageStartSeconds,
                start_speedup = image.ModelStartSeconds / image.ImageStartSeconds,
                image_plain_read_gbps = image.ImagePlainReadGbps,
                image_first_read_gbps = image.ImageFirstReadGbps,
                ratio_image_first_read = image.ImageFirstReadGbps / image.ImagePlainReadGbps,
            }, new JsonSerializerOptions { WriteIndented = true }));
        }
        return 0;

        void Row(string what, double gbps) =>
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what,-44} {gbps,8:F2} {gbps / baseline,12:F2}×"));
    }

    /// <summary>Reads every file start to end into one reused 16 MiB buffer; returns seconds.</summary>
    internal static double SequentialRead(IReadOnlyList<string> files)
    {
        using var buffer = new NativeBuffer(16 << 20);
        var watch = Stopwatch.StartNew();
        foreach (var file in files)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            while (stream.Read(buffer.Span) > 0)
            {
            }
        }
        return watch.Elapsed.TotalSeconds;
    }

    /// <summary>GB/s of writing one byte per 4 KiB page into <paramref name="bytes"/> of freshly mapped memory: what placing a bank costs before any data moves.</summary>
    private static unsafe double FirstTouch(long bytes)
    {
        var specs = new[] { new RegionSpec(1, bytes, 0) };
        var watch = Stopwatch.StartNew();
        using var store = HostPlacement.CreateStore(specs);
        var region = store.Regions[0];
        for (long at = 0; at < region.Length; at += 4096)
            region.BaseAddress[at] = 1;
        return bytes / 1e9 / watch.Elapsed.TotalSeconds;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];
    }
}
