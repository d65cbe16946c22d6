using System.Diagnostics;
using Fabric.Common;
using Fabric.Engine.Paging;
using Fabric.Engine.Sources;
using Fabric.Transport;

namespace Fabric.Sim.Cli;

/// <summary>
/// Measures the real engine's fetch path — <see cref="PoolSource.FetchExpertAsync"/> (1 MiB reads, xxHash64 verify)
/// into a ring of slot-sized native buffers, each fetch started on the thread pool as the engine does — against a
/// live pool endpoint, one fetch at a time and <c>concurrency</c> at a time (the time until the last lands). The engine's
/// fetches are served in order, so the two give the per-fetch latency L and bandwidth B: T1 = L + S/B, Tk = L + k·S/B.
/// </summary>
internal static class FetchPathProbe
{
    public sealed record Result(double SoloNs, double ConcurrentNs, int Concurrency, long ExpertBytes, double LatencyNs, double BytesPerSecond);

    public static async Task<Result> MeasureAsync(string endpoint, string token, int slots, int concurrency, int rounds)
    {
        await using var source = await PoolSource.ConnectAsync([FabricEndpoint.Parse(endpoint)], token).ConfigureAwait(false);
        var config = source.Config;
        var slotBytes = source.ExpertLayout.SlotBytes;
        slots = Math.Max(slots, concurrency);
        using var slotMemory = new NativeBuffer(slots * slotBytes);
        var expertBytes = 0L;
        var next = 0;
        var slot = 0;

        async Task<long> FetchAsync(int index, int into)
        {
            var key = new ExpertKey(index / config.NumLocalExperts % config.ExpertLayers, index % config.NumLocalExperts);
            return await source.FetchExpertAsync(key, slotMemory.Memory.Slice((int)(into * slotBytes), (int)slotBytes), CancellationToken.None).ConfigureAwait(false);
        }

        async Task<double> RoundAsync(int k)
        {
            var tasks = new Task<long>[k];
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < k; i++)
            {
                var index = next++;
                var into = slot++ % slots;
                tasks[i] = Task.Run(() => FetchAsync(index, into));
            }
            foreach (var t in tasks)
                expertBytes = await t.ConfigureAwait(false);
            return clock.Elapsed.TotalMilliseconds * 1e6;
        }

        // Warm up as a running engine is: every expert read once (the client's first touch of each page of a shm
        // mapping faults), every slot written once.
        for (var i = 0; i < Math.Max(config.TotalExperts, slots); i++)
            await RoundAsync(1).ConfigureAwait(false);
        var solo = new List<double>();
        var together = new List<double>();
        var budget = Stopwatch.StartNew();
        for (var r = 0; r < rounds || budget.Elapsed < MinimumTime; r++)
        {
            solo.Add(await RoundAsync(1).ConfigureAwait(false));
            together.Add(await RoundAsync(concurrency).ConfigureAwait(false));
        }
        return FromTimes(Mean(solo), Mean(together), concurrency, expertBytes);
    }

    private static Result FromTimes(double t1, double tk, int concurrency, long expertBytes)
    {
        double bandwidth;
        double latency;
        if (concurrency > 1 && tk > t1)
        {
            bandwidth = (concurrency - 1) * expertBytes / ((tk - t1) / 1e9);
            latency = Math.Max(0, t1 - (expertBytes / bandwidth * 1e9));
        }
        else
        {
            bandwidth = expertBytes / (t1 / 1e9);
            latency = 0;
        }
        return new Result(t1, tk, concurrency, expertBytes, latency, bandwidth);
    }

    // Long enough that a shared machine's scheduling noise averages out as it does over the recorded run.
    private static readonly TimeSpan MinimumTime = TimeSpan.FromSeconds(1);

    private static double Mean(List<double> samples) => samples.Average();
}
