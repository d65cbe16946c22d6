using Fabric.Engine.Runtime;

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
            foreach (var visit in log.Where(f => f.Step > 0).GroupBy(f => (f.Step, f.Layer)))
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
}
