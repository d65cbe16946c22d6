using System.Diagnostics;
using System.Globalization;
using Fabric.Common;
using Spectre.Console;

namespace Fabric.Cli;

/// <summary>
/// Shows the progress of long work on stderr: a Spectre.Console bar when stderr is a terminal, otherwise one plain
/// line at most every <c>plainEvery</c> (so short work prints nothing).
/// </summary>
public static class ProgressDisplay
{
    /// <summary>
    /// Runs <paramref name="work"/> over <paramref name="totalBytes"/> bytes (a bank load, a conversion), handing it
    /// a sink for the bytes done; the bar shows the transfer speed, plain lines GB and GB/s every 2 s.
    /// </summary>
    public static T RunBytes<T>(string label, long totalBytes, Func<IProgress<long>, T> work)
    {
        var watch = Stopwatch.StartNew();
        return Run(label, Math.Max(totalBytes, 1), bytes => bytes, work, withSpeed: true, TimeSpan.FromSeconds(2),
            bytes => string.Create(CultureInfo.InvariantCulture,
                $"{label}: {bytes / 1e9:F2} of {totalBytes / 1e9:F2} GB ({bytes / 1e9 / Math.Max(watch.Elapsed.TotalSeconds, 1e-9):F2} GB/s)"));
    }

    /// <summary>
    /// Runs <paramref name="work"/>, handing it a sink for the fraction done (0 to 1); plain lines every 10 s say
    /// how far it is (<paramref name="unit"/> names what the fraction counts) and the seconds spent.
    /// </summary>
    public static T RunFraction<T>(string label, string unit, Func<IProgress<double>, T> work)
    {
        var watch = Stopwatch.StartNew();
        return Run(label, 1, done => done, work, withSpeed: false, TimeSpan.FromSeconds(10),
            done => string.Create(CultureInfo.InvariantCulture, $"{label}: {done * 100:F0}% of {unit}, {watch.Elapsed.TotalSeconds:F0} s"));
    }

    private static T Run<T, TValue>(string label, double maxValue, Func<TValue, double> toValue, Func<IProgress<TValue>, T> work,
        bool withSpeed, TimeSpan plainEvery, Func<TValue, string> plainLine)
    {
        if (!Console.IsErrorRedirected)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            ProgressColumn[] columns = withSpeed
                ? [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn()]
                : [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn()];
            var result = default(T)!;
            console.Progress()
                .AutoClear(true)
                .Columns(columns)
                .Start(context =>
                {
                    var task = context.AddTask(label, maxValue: maxValue);
                    result = work(new InlineProgress<TValue>(v => task.Value = Math.Max(task.Value, toValue(v))));
                    task.Value = task.MaxValue;
                });
            return result;
        }

        var watch = Stopwatch.StartNew();
        long lastLine = 0;
        var gate = new Lock();
        return work(new InlineProgress<TValue>(value =>
        {
            lock (gate)
            {
                var now = watch.ElapsedMilliseconds;
                if (now - lastLine < plainEvery.TotalMilliseconds)
                    return;
                lastLine = now;
            }
            Console.Error.WriteLine(plainLine(value));
        }));
    }
}
