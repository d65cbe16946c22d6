using Fabric.Engine.Runtime;
using Fabric.Sim.Topology;

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

    [Fact]
    public void Fit_FewBursts_OrOneBurstSize_IsNull()
    {
        Assert.Null(FetchPathFit.Fit([Log(1, 400_000, 1_000_000, v => 1 + (v % 2))], ExpertBytes));
        Assert.Null(FetchPathFit.Fit([Log(20, 400_000, 1_000_000, _ => 2)], ExpertBytes));
        Assert.Null(FetchPathFit.Fit([Log(20, 400_000, 1_000_000, _ => 0, prefillFetches: 50)], ExpertBytes));
    }
}
