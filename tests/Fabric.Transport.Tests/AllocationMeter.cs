namespace Fabric.Transport.Tests;

/// <summary>
/// Bytes allocated per operation, counted for the whole process. Other work in the process (the test runner, work left
/// by earlier tests) can allocate during any one window, so the figure is the least of several windows: an allocation
/// made by every operation shows in every window, a stray one does not.
/// </summary>
internal static class AllocationMeter
{
    public static async Task<double> FewestBytesPerOperationAsync(Func<int, Task> runRounds, int rounds, int operationsPerRound, int windows = 5)
    {
        await runRounds(rounds / 4);
        var fewest = double.MaxValue;
        for (var window = 0; window < windows; window++)
        {
            var before = GC.GetTotalAllocatedBytes(precise: true);
            await runRounds(rounds);
            var perOperation = (GC.GetTotalAllocatedBytes(precise: true) - before) / (double)(operationsPerRound * rounds);
            fewest = Math.Min(fewest, perOperation);
        }

        return fewest;
    }
}
