using System.Diagnostics;

namespace Fabric.Engine.Runtime;

/// <summary>The outcome of one generation. Times in seconds unless named otherwise.</summary>
public sealed record GenerationResult(
    int[] Tokens,
    int PromptTokens,
    double TimeToFirstTokenSeconds,
    double DecodeSeconds,
    double TotalSeconds)
{
    /// <summary>Decode throughput: tokens after the first per second of decode (0 when only one token was generated).</summary>
    public double DecodeTokensPerSecond => Tokens.Length > 1 && DecodeSeconds > 0 ? (Tokens.Length - 1) / DecodeSeconds : 0;
}

/// <summary>Prefill then token-by-token decode on one sequence of a <see cref="MoeEngine"/>.</summary>
public static class Generator
{
    /// <summary>
    /// Generates up to <paramref name="maxNewTokens"/> tokens after <paramref name="prompt"/>, calling
    /// <paramref name="onToken"/> as each one is chosen. Step 0 is the prefill (it yields the first token).
    /// </summary>
    public static async Task<GenerationResult> GenerateAsync(MoeEngine engine, int[] prompt, int maxNewTokens, Sampler sampler,
        Action<int>? onToken = null, int sequence = 0, CancellationToken cancellationToken = default)
    {
        if (prompt.Length == 0)
            throw new Fabric.Common.FabricException("The prompt is empty; give at least one token id.");
        var vocab = engine.Config.VocabSize;
        foreach (var t in prompt)
        {
            if ((uint)t >= (uint)vocab)
                throw new Fabric.Common.FabricException($"Prompt token id {t} is outside the model's vocabulary of {vocab}.");
        }
        var tokens = new List<int>(Math.Min(maxNewTokens, 4096));
        var total = Stopwatch.StartNew();
        var logits = await engine.ForwardAsync(prompt, 0, sequence, 0, cancellationToken).ConfigureAwait(false);
        var next = sampler.Next(logits);
        tokens.Add(next);
        var ttft = total.Elapsed.TotalSeconds;
        onToken?.Invoke(next);
        engine.Trace?.WriteStep(0, (total.Elapsed.Ticks * TimeSpan.NanosecondsPerTick) - engine.LastForwardLayerNs);
        var decode = Stopwatch.StartNew();
        var one = new int[1];
        for (var step = 1; step < maxNewTokens; step++)
        {
            var started = decode.Elapsed.Ticks;
            one[0] = next;
            logits = await engine.ForwardAsync(one, prompt.Length + step - 1, sequence, step, cancellationToken).ConfigureAwait(false);
            next = sampler.Next(logits);
            tokens.Add(next);
            onToken?.Invoke(next);
            engine.Trace?.WriteStep(step, ((decode.Elapsed.Ticks - started) * TimeSpan.NanosecondsPerTick) - engine.LastForwardLayerNs);
        }
        return new GenerationResult([.. tokens], prompt.Length, ttft, tokens.Count > 1 ? decode.Elapsed.TotalSeconds : 0, total.Elapsed.TotalSeconds);
    }
}
