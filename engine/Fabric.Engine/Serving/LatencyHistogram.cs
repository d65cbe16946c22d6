namespace Fabric.Engine.Serving;

/// <summary>
/// A Prometheus-style cumulative histogram of durations in seconds over fixed bucket bounds; thread-safe.
/// </summary>
public sealed class LatencyHistogram
{
    /// <summary>Bucket upper bounds in seconds (1 ms to 60 s).</summary>
    public static readonly double[] DefaultBounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    private readonly long[] _counts;
    private readonly Lock _lock = new();
    private double _sum;
    private long _count;

    public LatencyHistogram(double[]? bounds = null)
    {
        Bounds = bounds ?? DefaultBounds;
        _counts = new long[Bounds.Count];
    }

    /// <summary>Upper bounds of the buckets, seconds, ascending.</summary>
    public IReadOnlyList<double> Bounds { get; }

    public void Observe(double seconds)
    {
        lock (_lock)
        {
            for (var i = 0; i < _counts.Length; i++)
            {
                if (seconds <= Bounds[i])
                    _counts[i]++;
            }
            _sum += seconds;
            _count++;
        }
    }

    /// <summary>Cumulative counts per bound (as Prometheus's le buckets), the sum of observations (s) and their count.</summary>
    public (long[] Cumulative, double Sum, long Count) Snapshot()
    {
        lock (_lock)
            return ((long[])_counts.Clone(), _sum, _count);
    }
}
