using System.Net;
using System.Text;
using System.Text.Json;

namespace Fabric.EndToEnd.Tests;

/// <summary>fabric-engine serve's admission, cancellation and shutdown, each against a server of its own.</summary>
public sealed class ServeLifecycleTests : IClassFixture<ServeModel>
{
    private const int LongStreamTokens = 3000;

    // Longer than a server can finish while the test makes its other calls, even on an idle machine.
    private const int EndlessStreamTokens = 30000;
    private readonly ServeModel _fixture;

    public ServeLifecycleTests(ServeModel fixture) => _fixture = fixture;

    private Task<ServeProcess> StartAsync(string extra, int maxSeqLen = 4096) =>
        ServeProcess.StartAsync($"--model \"{_fixture.ModelDirectory}\" --max-seq-len {maxSeqLen} --max-batch 1 --max-waiting 0 {extra}");

    private static async Task<(HttpResponseMessage Response, StreamReader Reader)> OpenStreamAsync(ServeProcess server, int maxTokens = LongStreamTokens)
    {
        var body = $$"""{"prompt": [3, 1, 4, 1, 5], "max_tokens": {{maxTokens}}, "temperature": 0, "stream": true}""";
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        // Read until two chunks have arrived: the request is running.
        var chunks = 0;
        while (chunks < 2 && await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
                chunks++;
        }
        return (response, reader);
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 100 && !await condition(); i++)
            await Task.Delay(50);
        Assert.True(await condition());
    }

    [Fact]
    public async Task AFullServer_Answers429_AndADisconnectMidStream_FreesItsKvLaneAtOnce()
    {
        await using var server = await StartAsync("", maxSeqLen: EndlessStreamTokens + 16);
        var (response, reader) = await OpenStreamAsync(server, EndlessStreamTokens);
        Assert.Equal(1, await server.MetricAsync("fabric_kv_lanes_used"));
        Assert.True(await server.MetricAsync("fabric_kv_blocks_used") >= 1);

        using (var refused = await server.Http.PostAsync("/v1/completions", new StringContent("""{"prompt": [1], "max_tokens": 2}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        }
        Assert.Equal(1, await server.MetricAsync("fabric_requests_rejected_total"));

        // The client goes away mid-stream: its request is cancelled and its lane is free again.
        reader.Dispose();
        response.Dispose();
        await WaitForAsync(async () => await server.MetricAsync("fabric_kv_lanes_used") == 0);
        Assert.Equal(0, await server.MetricAsync("fabric_requests_running"));
        Assert.Equal(0, await server.MetricAsync("fabric_kv_blocks_used"));
        Assert.True(await server.MetricAsync("fabric_completion_tokens_total") < EndlessStreamTokens);
        using var next = await server.Http.PostAsync("/v1/completions", new StringContent("""{"prompt": [1], "max_tokens": 2}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task Sigterm_RefusesNewRequestsWith503_LetsTheRunningStreamFinish_ThenExitsZero()
    {
        await using var server = await StartAsync("--drain-timeout 60s");
        var (response, reader) = await OpenStreamAsync(server);
        using (response)
        using (reader)
        {
            server.Terminate();
            await WaitForAsync(async () => (await server.Http.GetAsync("/healthz")).StatusCode == HttpStatusCode.ServiceUnavailable);
            using (var refused = await server.Http.PostAsync("/v1/completions", new StringContent("""{"prompt": [1], "max_tokens": 2}""", Encoding.UTF8, "application/json")))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                Assert.Equal("service_unavailable", JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("type").GetString());
            }
            string? last = null;
            var finish = "";
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                    continue;
                last = line;
                if (line != "data: [DONE]" && JsonDocument.Parse(line["data: ".Length..]).RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString() is { } f)
                    finish = f;
            }
            Assert.Equal("data: [DONE]", last);
            Assert.Equal("length", finish);
        }
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("drained", server.Lines);
    }

    [Fact]
    public async Task Sigterm_PastTheDrainDeadline_CutsTheRunningStream_AndStillExitsZero()
    {
        await using var server = await StartAsync("--drain-timeout 200ms");
        var (response, reader) = await OpenStreamAsync(server);
        using (response)
        using (reader)
        {
            server.Terminate();
            Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }
        Assert.Contains(server.Lines, l => l.StartsWith("drain deadline passed: 1 requests cut", StringComparison.Ordinal));
    }
}
