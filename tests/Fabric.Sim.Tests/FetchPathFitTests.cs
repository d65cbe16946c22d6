using Fabric.Engine.Runtime;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Tests;

public sealed class FetchPathFitTests
{
    private const long ExpertBytes = 3 << 20;

    // Bursts served in order: a burst of n issued at t lands its last fetch at t + latency + n·perFetch.
    private static List<FetchTiming> Log(int steps, double latencyNs, double perFetchNs, Func<int, int> burstSize, int prefillFetches = 0)
    {
        var log = new List<FetchTiming>();
        long t = 0;
        for (var f = 0; f < prefillFetches; f++)
            log.Add(new FetchTiming(0, 0, t, 0, 100_000_000));
        for (var step = 1; step <= steps; step++)
        {
            for (var layer = 0; layer < 4; layer++)
            {
                t += 10_000_000;
                var n = burstSize((step * 4) + layer);
                for (var k = 1; k <= n; k++)
                {
                    var start = (long)(latencyNs + ((k - 1) * perFetchNs));
                    log.Add(new FetchTiming(step, layer, t, start, (long)perFetchNs));
                }
            }
        }
        return log;
    }

    [Fact]
    public void Fit_InOrderBursts_RecoversLatencyAndBandwidth_AndIgnoresThePrefill()
    {
        var fit = FetchPathFit.Fit([Log(20, 400_000, 1_000_000, v => 1 + (v % 3), prefillFetches: 30), Log(10, 400_000, 1_000_000, v => v % 3)], ExpertBytes);
        Assert.NotNull(fit);
        Assert.Equal(80 + 40 - 13, fit.Bursts);
        Assert.Equal(400_000, fit.LatencyNs, 1e-3);
        Assert.Equal(ExpertBytes / 1e-3, fit.BytesPerSecond, 1e-3);
        Assert.Equal(3, fit.BurstSize);
        Assert.Equal(1_400_000, fit.SoloNs, 1e-3);
        Assert.Equal(3_400_000, fit.BurstNs, 1e-3);
    }

    // Decode visits of one token with two distinct experts: dense D, an expert c; the hit computed beside a fetch k·c.
    private static (IReadOnlyList<FetchTiming> Log, IReadOnlyList<RoutingTrace.Visit> Visits) Run(int steps, double k, long landsNs, Func<int, int> fetches)
    {
        const long dense = 200_000, expert = 250_000;
        var log = new List<FetchTiming>();
        var visits = new List<RoutingTrace.Visit> { new(0, 0, 8, [0, 1, 2, 3], 5_000_000, 0) };
        long t = 0;
        for (var step = 1; step <= steps; step++)
        {
            for (var layer = 0; layer < 4; layer++)
            {
                t += 10_000_000;
                var n = fetches((step * 4) + layer);
                var hit = (long)(n == 1 ? k * expert : expert);
                for (var f = 0; f < n; f++)
                    log.Add(new FetchTiming(step, layer, t, 50_000, landsNs - 50_000 + (f * 1_000_000)));
                var stall = n == 0 ? 0 : n == 1 ? landsNs - hit : landsNs + 1_000_000;
                visits.Add(new RoutingTrace.Visit(step, layer, 1, [layer, layer + 1], dense + (n == 1 ? hit + expert : 2 * expert), stall));
            }
        }
        return (log, visits);
    }

    [Fact]
    public void HitSlowdown_FromVisitsWithAndWithoutOneFetch_RecoversIt()
    {
        Assert.Equal(3.0, FetchPathFit.HitSlowdown([Run(20, 3.0, 2_000_000, v => v % 3), Run(10, 3.0, 2_500_000, v => (v + 1) % 3)], topK: 2)!.Value, 1e-9);
        Assert.Equal(1.0, FetchPathFit.HitSlowdown([Run(20, 1.0, 2_000_000, v => v % 3)], topK: 2)!.Value, 1e-9);
    }

    [Fact]
    public void HitSlowdown_WithoutBothKindsOfVisit_IsNull()
    {
        Assert.Null(FetchPathFit.HitSlowdown([Run(20, 3.0, 2_000_000, _ => 1)], topK: 2));
        Assert.Null(FetchPathFit.HitSlowdown([Run(20, 3.0, 2_000_000, v => v % 2 == 0 ? 0 : 2)], topK: 2));
        Assert.Null(FetchPathFit.HitSlowdown([Run(1, 3.0, 2_000_000, v => v % 2)], topK: 2));
    }

    [Fact]
    public void Fit_FewBursts_OrOneBurstSize_IsNull()
    {
        Assert.Null(FetchPathFit.Fit([Log(1, 400_000, 1_000_000, v => 1 + (v % 2))], ExpertBytes));
        Assert.Null(FetchPathFit.Fit([Log(20, 400_000, 1_000_000, _ => 2)], ExpertBytes));
        Assert.Null(FetchPathFit.Fit([Log(20, 400_000, 1_000_000, _ => 0, prefillFetches: 50)], ExpertBytes));
    }
}
