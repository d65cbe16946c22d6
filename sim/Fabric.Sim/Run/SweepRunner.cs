using System.Runtime.ExceptionServices;
using Fabric.Sim.Reports;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Run;

/// <summary>
/// Runs the points of a sweep, several at once: each run is single-threaded (fifo runs too, which could use more
/// threads alone) and shares nothing mutable with the others, so N cores run N points side by side and every result is
/// the one a run on its own gives.
/// </summary>
public static class SweepRunner
{
    /// <summary>
    /// Runs every (topology, workload) of <paramref name="plan"/> on up to <paramref name="jobs"/> threads; returns the
    /// points in plan order. <paramref name="finished"/> hears of each as it ends (from the thread that ran it).
    /// </summary>
    public static IReadOnlyList<SweepPoint> Run(
        IReadOnlyList<(Topology.Topology Topology, Workload Workload)> plan, int jobs, Action<int, SweepPoint>? finished = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(jobs, 1);
        var points = new SweepPoint[plan.Count];
        try
        {
            Parallel.For(0, plan.Count, new ParallelOptions { MaxDegreeOfParallelism = jobs }, i =>
            {
                var (t, w) = plan[i];
                var result = SimRunner.Run(t, w, threads: jobs > 1 ? 1 : null);
                points[i] = new SweepPoint(t.Name, w.Policy, w.Prefetch, w.Slots, (double)w.Slots / w.Model.TotalExperts, result);
                finished?.Invoke(i, points[i]);
            });
        }
        catch (AggregateException e)
        {
            // A point that cannot run (an engine that cannot make progress) fails the sweep with its own error.
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
        return points;
    }
}
