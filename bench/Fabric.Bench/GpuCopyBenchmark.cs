using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Gpu;
using Fabric.Engine.Gpu.Kernels;
using Fabric.Engine.Gpu.Memory;
using ILGPU;
using ILGPU.Runtime;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench gpu-copy`: host→device copies of expert-sized blocks from the engine's pinned staging on the copy
/// stream (the fetch path), beside a plain synchronous copy of the same bytes (cuMemcpyHtoD from the same page-locked
/// memory) and a synchronous copy from pageable memory, in the same run; then how much of the copy time hides behind
/// GEMV kernels running on the compute stream at the same time.
/// </summary>
public sealed class GpuCopyBenchmark : IBenchmark
{
    public string Name => "gpu-copy";

    public string Summary => "host→device expert copies from pinned staging (copy stream) vs plain cuMemcpyHtoD, and copy/compute overlap";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var device = new Option<string>("--device") { Description = "Accelerator: cuda, cuda:N, or ilgpu-cpu (exercises the path; its figures are memcpys).", DefaultValueFactory = _ => "cuda" };
        var sizes = new Option<string>("--sizes") { Description = "Expert block sizes: the medium model's (9 MiB), and Mixtral-8x7B's in BF16 (336 MiB).", DefaultValueFactory = _ => "9MiB,64MiB,336MiB" };
        var copies = new Option<int>("--copies") { Description = "Experts copied per measurement (distinct slots, cycling over 4 staging buffers).", DefaultValueFactory = _ => 8 };
        var rounds = new Option<int>("--rounds") { Description = "Measurements per figure; the best is reported.", DefaultValueFactory = _ => 5 };
        var json = new Option<string?>("--json") { Description = "Also write the results as JSON to this path." };
        var command = new RootCommand(Summary) { device, sizes, copies, rounds, json };
        var parsed = command.Parse(args);
        if (parsed.Errors.Count > 0 || args.Contains("--help") || args.Contains("-h"))
            return await parsed.InvokeAsync(cancellationToken: cancellationToken);

        var blockSizes = parsed.GetValue(sizes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ByteSize.Parse).ToArray();
        int count = Math.Max(1, parsed.GetValue(copies));
        int repeat = Math.Max(1, parsed.GetValue(rounds));
        using var gpu = IlgpuAccelerators.Open(parsed.GetValue(device)!);
        var accelerator = gpu.Accelerator;
        Console.WriteLine($"{gpu.Spec}: {gpu.Name}, {gpu.MemoryBytes / (double)(1L << 30):0.0} GiB; {count} experts per measurement, best of {repeat}");
        if (!gpu.IsCuda)
            Console.WriteLine("note: the CPU accelerator's copies are memcpys; these figures say nothing about PCIe.");
        Console.WriteLine($"  {"expert",9} {"staging→slot GB/s",18} {"cuMemcpyHtoD GB/s",18} {"ratio",6} {"pageable GB/s",14} {"ratio",6} {"page-locked",12}");

        var results = new List<GpuCopyResult>();
        foreach (long size in blockSizes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var result = MeasureSize(accelerator, checked((int)size), count, repeat);
            results.Add(result);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {ByteSize.Format(size),9} {result.StagingGbps,18:0.00} {result.PlainGbps,18:0.00} {result.StagingGbps / result.PlainGbps,6:0.00} {result.PageableGbps,14:0.00} {result.StagingGbps / result.PageableGbps,6:0.00} {(result.PageLocked ? "yes" : "no"),12}"));
        }

        var overlap = MeasureOverlap(accelerator, checked((int)blockSizes.Max()), count, repeat);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"overlap: copies alone {overlap.CopySeconds * 1e3:0.0} ms, GEMV kernels alone {overlap.ComputeSeconds * 1e3:0.0} ms, both at once {overlap.BothSeconds * 1e3:0.0} ms " +
            $"→ {overlap.HiddenFraction:P0} of the shorter one hidden (0% = serial, 100% = fully overlapped)"));

        if (parsed.GetValue(json) is { } path)
        {
            await File.WriteAllTextAsync(path, JsonSerializer.Serialize(new { device = gpu.Spec.ToString(), name = gpu.Name, sizes = results, overlap },
                new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
            Console.WriteLine($"wrote {path}");
        }
        return 0;
    }

    private static GpuCopyResult MeasureSize(Accelerator accelerator, int size, int count, int repeat)
    {
        var staging = Enumerable.Range(0, Math.Min(4, count)).Select(_ => PinnedStaging.Allocate(accelerator, size)).ToArray();
        try
        {
            foreach (var s in staging)
                Random.Shared.NextBytes(s.Span);
            using var slots = accelerator.Allocate1D<byte>((long)size * count);
            using var queue = new CopyQueue(accelerator);
            var pageable = GC.AllocateUninitializedArray<byte>(size);
            Random.Shared.NextBytes(pageable);
            var stream = accelerator.DefaultStream;
            ArrayView<byte> Slot(int i) => slots.View.SubView((long)i * size, size);

            double staged = Best(repeat, () =>
            {
                var last = StreamTicket.None;
                for (int i = 0; i < count; i++)
                    last = queue.Enqueue(staging[i % staging.Length], 0, Slot(i));
                queue.Wait(last);
            });
            double plain = Best(repeat, () =>
            {
                for (int i = 0; i < count; i++)
                {
                    Slot(i).CopyFrom(stream, staging[i % staging.Length].HostView);
                    stream.Synchronize();
                }
            });
            double fromPageable = Best(repeat, () =>
            {
                for (int i = 0; i < count; i++)
                    Slot(i).CopyFromCPU(stream, ref pageable[0], size);
            });
            double bytes = (double)size * count;
            return new GpuCopyResult(size, bytes / staged / 1e9, bytes / plain / 1e9, bytes / fromPageable / 1e9, staging[0].IsPageLocked);
        }
        finally
        {
            foreach (var s in staging)
                s.Dispose();
        }
    }

    /// <summary>Copies of <paramref name="count"/> blocks on the copy stream while BF16 GEMVs of a 4096² matrix run on a compute stream.</summary>
    private static GpuOverlap MeasureOverlap(Accelerator accelerator, int size, int count, int repeat)
    {
        const int dim = 4096;
        using var staging = PinnedStaging.Allocate(accelerator, size);
        using var slots = accelerator.Allocate1D<byte>((long)size * count);
        using var queue = new CopyQueue(accelerator);
        using var compute = accelerator.CreateStream();
        using var kernels = new GpuKernels(accelerator);
        using var weights = accelerator.Allocate1D<ushort>((long)dim * dim);
        using var x = accelerator.Allocate1D<float>(dim);
        using var y = accelerator.Allocate1D<float>(dim);
        weights.MemSetToZero();
        x.MemSetToZero();
        var w = new WeightView(weights.View, ArrayView<float>.Empty, (int)WeightType.BF16);

        void Copies()
        {
            var last = StreamTicket.None;
            for (int i = 0; i < count; i++)
                last = queue.Enqueue(staging, 0, slots.View.SubView((long)i * size, size));
            queue.Wait(last);
        }
        double copyOnly = Best(repeat, Copies);

        // As many GEMVs as take about as long as the copies.
        double one = Best(repeat, () =>
        {
            kernels.Project(compute, x.View, w, y.View, 1, dim, dim);
            compute.Synchronize();
        });
        int launches = Math.Clamp((int)(copyOnly / Math.Max(one, 1e-6)), 1, 100_000);
        void Gemvs()
        {
            for (int i = 0; i < launches; i++)
                kernels.Project(compute, x.View, w, y.View, 1, dim, dim);
        }
        double computeOnly = Best(repeat, () =>
        {
            Gemvs();
            compute.Synchronize();
        });
        double both = Best(repeat, () =>
        {
            Gemvs();
            Copies();
            compute.Synchronize();
        });
        double shorter = Math.Min(copyOnly, computeOnly);
        double hidden = Math.Clamp((copyOnly + computeOnly - both) / shorter, 0, 1);
        return new GpuOverlap(copyOnly, computeOnly, both, hidden, launches);
    }

    private static double Best(int repeat, Action run)
    {
        run();
        double best = double.MaxValue;
        for (int r = 0; r < repeat; r++)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return best;
    }


    private sealed record GpuCopyResult(long ExpertBytes, double StagingGbps, double PlainGbps, double PageableGbps, bool PageLocked);

    private sealed record GpuOverlap(double CopySeconds, double ComputeSeconds, double BothSeconds, double HiddenFraction, int GemvLaunches);
}
