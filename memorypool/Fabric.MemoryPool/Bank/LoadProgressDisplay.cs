using System.Diagnostics;
using System.Globalization;
using Fabric.Transport;
using Spectre.Console;

namespace Fabric.MemoryPool.Bank;

/// <summary>
/// Shows the progress of a long load on stderr: a Spectre.Console bar with GB/s when stderr is a terminal,
/// otherwise one plain line every few seconds.
/// </summary>
public static class LoadProgressDisplay
{
    /// <summary>Runs <paramref name="work"/>, handing it a progress sink for bytes done out of <paramref name="totalBytes"/>.</summary>
    public static T Run<T>(string label, long totalBytes, Func<IProgress<long>, T> work)
    {
        if (!Console.IsErrorRedirected)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            var result = default(T)!;
            console.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var task = context.AddTask(label, maxValue: Math.Max(totalBytes, 1));
                    result = work(new InlineProgress<long>(bytes => task.Value = Math.Max(task.Value, bytes)));
                    task.Value = task.MaxValue;
                });
            return result;
        }

        var watch = Stopwatch.StartNew();
        long lastLine = 0;
        var gate = new Lock();
        return work(new InlineProgress<long>(bytes =>
        {
            lock (gate)
            {
                var now = watch.ElapsedMilliseconds;
                if (now - lastLine < 2000)
                    return;
                lastLine = now;
            }
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{label}: {bytes / 1e9:F2} of {totalBytes / 1e9:F2} GB ({bytes / 1e9 / Math.Max(watch.Elapsed.TotalSeconds, 1e-9):F2} GB/s)"));
        }));
    }
}
