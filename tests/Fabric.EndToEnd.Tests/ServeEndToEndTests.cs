using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace Fabric.EndToEnd.Tests;

/// <summary>fabric-engine serve as a child process, driven over HTTP by the official OpenAI .NET client and by plain requests.</summary>
public sealed class ServeEndToEndTests : IClassFixture<ServeFixture>
{
    private readonly ServeFixture _fixture;

    public ServeEndToEndTests(ServeFixture fixture) => _fixture = fixture;

    private ServeProcess Server => _fixture.Server;

    private ChatClient Chat() => new(ServeFixture.ModelName, new ApiKeyCredential("unused"),
        new OpenAIClientOptions { Endpoint = new Uri(Server.Address, "/v1") });

    private static ChatCompletionOptions Greedy(int maxTokens) => new() { MaxOutputTokenCount = maxTokens, Temperature = 0 };

    private async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(string path, string json)
    {
        using var response = await Server.Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>The data lines of a server-sent event stream, up to and including [DONE].</summary>
    private async Task<List<string>> StreamAsync(string path, string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await Server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<string>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
                events.Add(line["data: ".Length..]);
        }
        return events;
    }

    [Fact]
    public async Task Chat_WithTheOfficialClient_StreamingAndNot_GiveTheSameText_FinishReasonAndUsage()
    {
        var client = Chat();
        List<ChatMessage> messages = [new SystemChatMessage("You are terse."), new UserChatMessage("Say something about the sea.")];
        ChatCompletion completion = await client.CompleteChatAsync(messages, Greedy(12));
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        var text = completion.Content[0].Text;
        Assert.True(completion.Usage.InputTokenCount > 10, $"{completion.Usage.InputTokenCount} prompt tokens for a system and a user message");
        Assert.InRange(completion.Usage.OutputTokenCount, 1, 12);
        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
        Assert.True(completion.FinishReason == ChatFinishReason.Stop || completion.Usage.OutputTokenCount == 12, $"{completion.FinishReason} after {completion.Usage.OutputTokenCount} tokens");

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in client.CompleteChatStreamingAsync(messages, Greedy(12)))
        {
            foreach (var part in update.ContentUpdate)
                streamed.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal(text, streamed.ToString());
        Assert.Equal(completion.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(completion.Usage.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(completion.Usage.OutputTokenCount, usage.OutputTokenCount);
    }

    [Fact]
    public async Task Chat_StopSequence_CutsTheTextBeforeIt_WithFinishReasonStop()
    {
        var client = Chat();
        List<ChatMessage> messages = [new UserChatMessage("Tell me a story.")];
        var full = (await client.CompleteChatAsync(messages, Greedy(24))).Value.Content[0].Text;
        Assert.True(full.Length >= 6, $"'{full}' is too short to cut");
        var stop = full.Substring(full.Length / 2, 2);
        var options = Greedy(24);
        options.StopSequences.Add(stop);
        ChatCompletion cut = await client.CompleteChatAsync(messages, options);
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], cut.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);

        var streamed = new StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate)
                streamed.Append(part.Text);
        }
        Assert.Equal(cut.Content[0].Text, streamed.ToString());
    }

    [Fact]
    public async Task Completions_TokenIdPrompt_StreamingAndNot_GiveTheTokensOfGenerate()
    {
        var generate = await ChildProgram.RunAsync("fabric-engine", $"generate --model \"{_fixture.ModelDirectory}\" --prompt-ids 5,9,13,200,7 --max-new-tokens 10");
        Assert.True(generate.Code == 0, generate.Stderr);
        var expected = generate.Stdout.Split('\n')[0].Trim().Split(',').Select(int.Parse).ToArray();

        var (status, body) = await PostAsync("/v1/completions", """{"model": "tiny", "prompt": [5, 9, 13, 200, 7], "max_tokens": 10, "temperature": 0}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        var choice = body.GetProperty("choices")[0];
        var tokens = choice.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var eos = tokens.Length < 10;
        Assert.Equal(expected[..tokens.Length], tokens);
        Assert.Equal(eos ? "stop" : "length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(5, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(tokens.Length, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var events = await StreamAsync("/v1/completions", """{"prompt": [5, 9, 13, 200, 7], "max_tokens": 10, "temperature": 0, "stream": true}""");
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        var streamedTokens = chunks.SelectMany(c => c.GetProperty("choices")[0].TryGetProperty("token_ids", out var ids) ? ids.EnumerateArray().Select(e => e.GetInt32()) : []).ToArray();
        Assert.Equal(tokens, streamedTokens);
        Assert.Equal(choice.GetProperty("text").GetString(), string.Concat(chunks.Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.Equal(choice.GetProperty("finish_reason").GetString(), chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Completions_TextPrompt_AnswersText_AndModelsAndHealthAreServed()
    {
        var (status, body) = await PostAsync("/v1/completions", """{"prompt": "The quick brown fox", "max_tokens": 6, "temperature": 0}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(choice.GetProperty("token_ids").GetArrayLength(), body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.NotNull(choice.GetProperty("text").GetString());

        var models = JsonDocument.Parse(await Server.Http.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal(ServeFixture.ModelName, models.GetProperty("data")[0].GetProperty("id").GetString());
        Assert.Equal("ok\n", await Server.Http.GetStringAsync("/healthz"));
        Assert.True(await Server.MetricAsync("fabric_completion_tokens_total") > 0);
    }

    [Theory]
    [InlineData("/v1/completions", "{\"prompt\": [1, 2", 400, null)]
    [InlineData("/v1/completions", "{\"prompt\": [1, 2], \"temperature\": 3}", 400, "temperature")]
    [InlineData("/v1/completions", "{\"prompt\": [1, 2], \"top_p\": 0}", 400, "top_p")]
    [InlineData("/v1/completions", "{\"prompt\": [1, 2], \"n\": 2}", 400, "n")]
    [InlineData("/v1/completions", "{\"prompt\": [1, 2], \"max_tokens\": -1}", 400, "max_tokens")]
    [InlineData("/v1/completions", "{\"prompt\": [1, 99999]}", 400, "prompt")]
    [InlineData("/v1/completions", "{\"max_tokens\": 3}", 400, "prompt")]
    [InlineData("/v1/completions", "{\"prompt\": [1, 2], \"stop\": 7}", 400, "stop")]
    [InlineData("/v1/completions", "{\"prompt\": [1, 2], \"max_tokens\": 300}", 400, "max_tokens")]
    [InlineData("/v1/chat/completions", "{\"messages\": []}", 400, "messages")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", 400, "messages")]
    [InlineData("/v1/completions", "{\"model\": \"gpt-4\", \"prompt\": [1]}", 404, "model")]
    public async Task BadRequests_AreAnsweredInOpenAisErrorShape_NamingTheField(string path, string json, int status, string? param)
    {
        using var response = await Server.Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(status, (int)response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        var message = error.GetProperty("message").GetString()!;
        Assert.EndsWith(".", message);
        if (param is not null)
        {
            Assert.Equal(param, error.GetProperty("param").GetString());
            Assert.Contains($"'{param}", message);
        }
    }

    [Fact]
    public async Task APromptLongerThanTheContext_IsRefusedWithContextLengthExceeded_ThroughTheOfficialClient()
    {
        var client = Chat();
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage(string.Concat(Enumerable.Repeat("sea and sky ", 200)))], Greedy(4)));
        Assert.Equal(400, e.Status);
        Assert.Contains("context_length_exceeded", e.Message);
        Assert.Contains("maximum context length is 256 tokens", e.Message);
    }
}
