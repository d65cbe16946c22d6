using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Fabric.Bench.Serve;

/// <summary>One streamed chat completion as a client sees it. Times in seconds from sending the request.</summary>
internal sealed record ChatResult(string Text, int[] TokenIds, int PromptTokens, double TimeToFirstToken, double Seconds, string FinishReason)
{
    /// <summary>Tokens after the first per second after the first.</summary>
    public double DecodeTokensPerSecond => TokenIds.Length > 1 && Seconds > TimeToFirstToken ? (TokenIds.Length - 1) / (Seconds - TimeToFirstToken) : 0;
}

/// <summary>Sends one streamed <c>/v1/chat/completions</c> request and reads its server-sent events.</summary>
internal static class ChatStream
{
    public static async Task<ChatResult> RunAsync(HttpClient http, string userMessage, int maxTokens, Action<string>? onText, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = userMessage } },
            ["max_tokens"] = maxTokens,
            ["temperature"] = 0,
            ["stream"] = true,
            ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
        });
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new Fabric.Common.FabricException($"The server answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        var text = new StringBuilder();
        var ids = new List<int>();
        var first = 0.0;
        var promptTokens = 0;
        var finish = "";
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal))
                continue;
            using var chunk = JsonDocument.Parse(line["data: ".Length..]);
            var root = chunk.RootElement;
            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                promptTokens = usage.GetProperty("prompt_tokens").GetInt32();
            if (root.GetProperty("choices").GetArrayLength() == 0)
                continue;
            var choice = root.GetProperty("choices")[0];
            if (choice.TryGetProperty("token_ids", out var tokenIds))
            {
                if (ids.Count == 0)
                    first = clock.Elapsed.TotalSeconds;
                ids.AddRange(tokenIds.EnumerateArray().Select(e => e.GetInt32()));
            }
            if (choice.GetProperty("delta").TryGetProperty("content", out var content) && content.GetString() is { Length: > 0 } piece)
            {
                text.Append(piece);
                onText?.Invoke(piece);
            }
            if (choice.GetProperty("finish_reason").GetString() is { } f)
                finish = f;
        }
        return new ChatResult(text.ToString(), [.. ids], promptTokens, first, clock.Elapsed.TotalSeconds, finish);
    }
}
