using System.Diagnostics;
using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Server.Image;

namespace Fabric.Bench;

/// <summary>The bank image's share of <c>bench load</c>: pool start to /healthz (image vs safetensors) and first reads of a mapped image.</summary>
internal static class ImageLoadRows
{
    /// <summary>What was measured, medians over the runs.</summary>
    public sealed record Figures(double ModelStartSeconds, double ImageStartSeconds, double ImageFirstReadGbps, double ImagePlainReadGbps, long ImageBytes);

    /// <summary>
    /// Converts <paramref name="checkpoint"/> into a temporary image, then per run: a pool from the safetensors and a
    /// pool from the image, each timed from process start to /healthz (alternating which goes first), and the image
    /// mapped afresh and read once start to end beside a plain sequential read of the image file.
    /// </summary>
    public static async Task<Figures> MeasureAsync(Checkpoint checkpoint, int repeat, CancellationToken cancellationToken)
    {
        var image = Path.Combine(Path.GetDirectoryName(checkpoint.Directory.TrimEnd('/'))!, $"bench-load-{Environment.ProcessId}.fbank");
        try
        {
            BankImageWriter.Write(checkpoint, image);
            var imageBytes = new FileInfo(image).Length;
            LoadBenchmark.SequentialRead([image]);
            var modelStart = new List<double>();
            var imageStart = new List<double>();
            var firstRead = new List<double>();
            var plainRead = new List<double>();
            for (var r = 0; r < repeat; r++)
            {
                var fromModel = $"serve --model \"{checkpoint.Directory}\" --listen tcp://127.0.0.1:0";
                var fromImage = $"serve --image \"{image}\" --listen tcp://127.0.0.1:0";
                foreach (var first in r % 2 == 0 ? new[] { true, false } : [false, true])
                {
                    if (first)
                        modelStart.Add(await PoolStartTimer.SecondsToHealthyAsync(fromModel, cancellationToken));
                    else
                        imageStart.Add(await PoolStartTimer.SecondsToHealthyAsync(fromImage, cancellationToken));
                }
                plainRead.Add(imageBytes / 1e9 / LoadBenchmark.SequentialRead([image]));
                firstRead.Add(FirstRead(image));
            }
            return new Figures(Median(modelStart), Median(imageStart), Median(firstRead), Median(plainRead), imageBytes);
        }
        finally
        {
            File.Delete(image);
        }
    }

    /// <summary>GB/s of reading every region of a freshly mapped image once, 16 MiB at a time, into one buffer (what a pool's first reads cost).</summary>
    private static unsafe double FirstRead(string image)
    {
        using var buffer = new NativeBuffer(16 << 20);
        var watch = Stopwatch.StartNew();
        using var bank = BankImage.Open(image, inPlaceShm: false);
        long bytes = 0;
        foreach (var region in bank.Store.Regions)
        {
            for (long at = 0; at < region.Length; at += buffer.Length)
            {
                var length = (int)Math.Min(buffer.Length, region.Length - at);
                new ReadOnlySpan<byte>(region.BaseAddress + at, length).CopyTo(buffer.Span);
                bytes += length;
            }
        }
        return bytes / 1e9 / watch.Elapsed.TotalSeconds;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];
    }
}
