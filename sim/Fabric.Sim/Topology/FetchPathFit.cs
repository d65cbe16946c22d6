using Fabric.Engine.Runtime;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Topology;

/// <summary>
/// A link's latency and bandwidth as the simulator's engine model uses them (a burst of n fetches issued together from
/// one pool node lands after L + n·S/B), fitted to the fetch log of real engine runs (<c>fetch_log</c> in
/// <c>fabric-engine generate --stats-json</c>): the fetches one decode visit issued form a burst, and the time from
/// its issue to its last fetch landing is fitted by least squares to L + n·S/B over every burst.
/// </summary>
public static class FetchPathFit
{
    /// <summary>
    /// The fit: <see cref="Bursts"/> decode bursts, the mean landing time of a single fetch and of
    /// <see cref="BurstSize"/> (the largest size seen), latency in ns and bandwidth in bytes/s.
    /// </summary>
    public sealed record Result(int Bursts, double SoloNs, int BurstSize, double BurstNs, double LatencyNs, double BytesPerSecond);

    /// <summary>
    /// Fits L and B to the decode fetches (step ≥ 1: the prefill's wide bursts are another regime) of
    /// <paramref name="logs"/>, for experts of <paramref name="expertBytes"/>. Null when the logs hold fewer than
    /// <paramref name="minimumBursts"/> bursts or only one burst size (nothing to separate L from S/B with).
    /// </summary>
    public static Result? Fit(IEnumerable<IReadOnlyList<FetchTiming>> logs, long expertBytes, int minimumBursts = 8)
    {
        var bursts = new List<(int Size, double Ns)>();
        foreach (var log in logs)
        {
            foreach (var visit in DecodeVisits(log))
            {
                var issued = visit.Min(f => f.IssuedNs);
                var landed = visit.Max(f => f.IssuedNs + f.QueuedNs + f.FetchNs);
                bursts.Add((visit.Count(), landed - issued));
            }
        }
        if (bursts.Count < minimumBursts || bursts.Select(b => b.Size).Distinct().Count() < 2)
            return null;
        var meanSize = bursts.Average(b => (double)b.Size);
        var meanNs = bursts.Average(b => b.Ns);
        var sxy = bursts.Sum(b => (b.Size - meanSize) * (b.Ns - meanNs));
        var sxx = bursts.Sum(b => (b.Size - meanSize) * (b.Size - meanSize));
        var perFetchNs = sxy / sxx;
        if (perFetchNs <= 0)
            return null;
        var latency = Math.Max(0, meanNs - (perFetchNs * meanSize));
        var largest = bursts.Max(b => b.Size);
        var solo = bursts.Where(b => b.Size == 1).Select(b => b.Ns).DefaultIfEmpty(double.NaN).Average();
        var widest = bursts.Where(b => b.Size == largest).Average(b => b.Ns);
        return new Result(bursts.Count, solo, largest, widest, latency, expertBytes / (perFetchNs / 1e9));
    }

    /// <summary>
    /// How many times longer the engine's resident experts take to compute while the visit's demand fetch is in flight
    /// beside them (<see cref="Workloads.Workload.HitSlowdownBesideFetch"/>), from real runs' fetch logs and routing
    /// traces. Decode visits of one token that use <paramref name="topK"/> distinct experts: in those with no fetch the
    /// recorded time is R0 = D + topK·c; in those with one fetch the engine computes its topK − 1 hits (k·(topK − 1)·c)
    /// between issuing the fetch and waiting for it, so the fetch's landing time minus the visit's stall is
    /// H = k·(topK − 1)·c, and the visit's time is R1 = R0 + (k − 1)·(topK − 1)·c. Hence (topK − 1)·c = H − (R1 − R0) and
    /// k = H / (H − (R1 − R0)), from the means over all runs. Null with fewer than <paramref name="minimumVisits"/>
    /// visits of either kind (or one that stalled in neither); never below 1.
    /// </summary>
    public static double? HitSlowdown(IEnumerable<(IReadOnlyList<FetchTiming> Log, IReadOnlyList<RoutingTrace.Visit> Visits)> runs, int topK, int minimumVisits = 8)
    {
        var (r0, r1, h) = (new List<double>(), new List<double>(), new List<double>());
        foreach (var (log, visits) in runs)
        {
            var fetches = DecodeVisits(log).ToDictionary(g => g.Key, g => g.ToList());
            foreach (var v in visits)
            {
                if (v.Step == 0 || v.Rows != 1 || v.Experts.Distinct().Count() != topK)
                    continue;
                if (!fetches.TryGetValue((v.Step, v.Layer), out var f))
                {
                    r0.Add(v.ComputeNs);
                }
                else if (f.Count == 1 && v.StallNs > 0)
                {
                    r1.Add(v.ComputeNs);
                    h.Add(f[0].QueuedNs + f[0].FetchNs - v.StallNs);
                }
            }
        }
        if (topK < 2 || r0.Count < minimumVisits || r1.Count < minimumVisits)
            return null;
        var stretch = r1.Average() - r0.Average();
        var hidden = h.Average();
        return hidden - stretch <= 0 ? null : Math.Max(1, hidden / (hidden - stretch));
    }

    // The fetches of each decode visit (step ≥ 1: the prefill's wide bursts are another regime), by (step, layer).
    private static IEnumerable<IGrouping<(int Step, int Layer), FetchTiming>> DecodeVisits(IReadOnlyList<FetchTiming> log) =>
        log.Where(f => f.Step > 0).GroupBy(f => (f.Step, f.Layer));
}
