using System.Diagnostics;
using System.Globalization;
using Fabric.Transport;
using Spectre.Console;

namespace Fabric.Sim.Cli;

/// <summary>
/// Shows how far a long simulation has got, on stderr: a bar with the time left when stderr is a terminal, otherwise
/// a plain line every 10 s (so a short run prints nothing).
/// </summary>
internal static class RunProgressDisplay
{
    /// <summary>Runs <paramref name="work"/>, handing it a sink for the fraction of the run done (0 to 1).</summary>
    public static T Run<T>(string label, Func<IProgress<double>, T> work)
    {
        if (!Console.IsErrorRedirected)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            var result = default(T)!;
            console.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var task = context.AddTask(label, maxValue: 1);
                    result = work(new InlineProgress<double>(done => task.Value = done));
                });
            return result;
        }

        var watch = Stopwatch.StartNew();
        var lastLine = 0L;
        return work(new InlineProgress<double>(done =>
        {
            var now = watch.ElapsedMilliseconds;
            if (now - lastLine < 10_000)
                return;
            lastLine = now;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label}: {done * 100:F0}% of the layer visits, {watch.Elapsed.TotalSeconds:F0} s"));
        }));
    }
}
