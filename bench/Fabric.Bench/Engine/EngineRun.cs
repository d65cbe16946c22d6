using System.Globalization;
using Fabric.Engine.Runtime;

namespace Fabric.Bench.Engine;

/// <summary>One generation with given settings: builds the engine, generates, returns the summary.</summary>
internal static class EngineRun
{
    public static async Task<GenerationSummary> RunAsync(LaunchSettings settings, int[] prompt, int newTokens, bool stream = false,
        string? traceOut = null, CancellationToken cancellationToken = default)
    {
        await using var engine = await EngineLauncher.CreateAsync(settings, cancellationToken);
        using var trace = traceOut is null ? null : new RoutingTraceWriter(traceOut);
        if (trace is not null)
        {
            trace.WriteHeader(engine.Config, prompt.Length, settings.Engine.Policy, settings.Engine.Prefetch, engine.Plan.Slots, engine.Source.TransportName);
            engine.Trace = trace;
        }
        var first = true;
        Action<int>? onToken = stream
            ? t =>
            {
                Console.Write((first ? "  " : ",") + t.ToString(CultureInfo.InvariantCulture));
                Console.Out.Flush();
                first = false;
            }
            : null;
        var result = await Generator.GenerateAsync(engine, prompt, newTokens, new Sampler(), onToken, cancellationToken: cancellationToken);
        if (stream)
            Console.WriteLine();
        return GenerationSummary.From(engine, result);
    }

    /// <summary>A fixed prompt of <paramref name="length"/> token ids inside the vocabulary.</summary>
    public static int[] Prompt(int length, int vocab) => [.. Enumerable.Range(0, length).Select(i => ((i * 7919) + 13) % vocab)];
}
