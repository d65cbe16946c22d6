using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Fabric.Bench.Serve;

/// <summary>What one load run measured. Times in seconds.</summary>
internal sealed record LoadResult(int Clients, int Requests, long OutputTokens, double Seconds, double[] TimesToFirstToken, double[] InterTokenLatencies, double ExpertBytes)
{
    public double TokensPerSecond => OutputTokens / Seconds;

    public double BytesPerToken => OutputTokens == 0 ? 0 : ExpertBytes / OutputTokens;

    public static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}

/// <summary>
/// A closed-loop load over HTTP: <c>clients</c> concurrent clients, each sending its next streamed completion as soon
/// as the last one ended, with prompt and output lengths drawn from a seeded uniform distribution (the same mix for
/// every client count). Token-id prompts, so no tokenizer is involved.
/// </summary>
internal static class LoadGenerator
{
    public static async Task<LoadResult> RunAsync(ServeChild server, int clients, int requestsPerClient, (int Min, int Max) promptLength,
        (int Min, int Max) outputLength, int vocab, int seed, CancellationToken cancellationToken)
    {
        var random = new Random(seed);
        var total = clients * requestsPerClient;
        var mix = Enumerable.Range(0, total).Select(_ =>
            (Prompt: Enumerable.Range(0, random.Next(promptLength.Min, promptLength.Max + 1)).Select(_ => random.Next(3, vocab)).ToArray(),
             Output: random.Next(outputLength.Min, outputLength.Max + 1))).ToArray();
        var next = -1;
        var ttft = new List<double>();
        var itl = new List<double>();
        long tokens = 0;
        var bytesBefore = await server.MetricAsync("fabric_expert_bytes_fetched_total", cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < total)
            {
                var (first, gaps, count) = await StreamOneAsync(server.Http, mix[i].Prompt, mix[i].Output, cancellationToken).ConfigureAwait(false);
                lock (ttft)
                {
                    ttft.Add(first);
                    itl.AddRange(gaps);
                    tokens += count;
                }
            }
        })).ConfigureAwait(false);
        var seconds = clock.Elapsed.TotalSeconds;
        var bytes = await server.MetricAsync("fabric_expert_bytes_fetched_total", cancellationToken).ConfigureAwait(false) - bytesBefore;
        ttft.Sort();
        itl.Sort();
        return new LoadResult(clients, total, tokens, seconds, [.. ttft], [.. itl], bytes);
    }

    private static async Task<(double First, List<double> Gaps, int Tokens)> StreamOneAsync(HttpClient http, int[] prompt, int maxTokens, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object> { ["prompt"] = prompt, ["max_tokens"] = maxTokens, ["temperature"] = 0, ["stream"] = true });
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new Fabric.Common.FabricException($"The server answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        var first = 0.0;
        var last = 0.0;
        var gaps = new List<double>();
        var count = 0;
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal) || !line.Contains("\"token_ids\"", StringComparison.Ordinal))
                continue;
            var now = clock.Elapsed.TotalSeconds;
            if (count == 0)
                first = now;
            else
                gaps.Add(now - last);
            last = now;
            count++;
        }
        return (first, gaps, count);
    }
}
