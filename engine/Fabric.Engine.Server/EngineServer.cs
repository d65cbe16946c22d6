using System.Runtime.InteropServices;
using System.Text.Json;
using Fabric.Engine.Runtime;
using Fabric.Engine.Serving;
using Fabric.Model.Tokenization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fabric.Engine.Server;

/// <summary>What the server serves once loaded: the engine and, when the checkpoint has one, its tokenizer (both owned by the server).</summary>
public sealed record LoadedModel(MoeEngine Engine, TextTokenizer? Tokenizer);

/// <summary>
/// <c>fabric-engine serve</c>: an OpenAI-compatible HTTP server (Kestrel, minimal APIs) over a <see cref="BatchScheduler"/>.
/// It listens at once and answers 503 until the model is loaded; SIGTERM (or SIGINT) stops admitting (503), lets running
/// requests finish for at most <see cref="ServeSettings.DrainTimeout"/>, cuts the rest, and returns 0.
/// </summary>
public sealed class EngineServer
{
    private readonly ServeSettings _settings;
    private readonly CancellationTokenSource _stop = new();
    private volatile BatchScheduler? _scheduler;
    private volatile TextTokenizer? _tokenizer;
    private volatile bool _draining;

    private EngineServer(ServeSettings settings) => _settings = settings;

    public static async Task<int> RunAsync(ServeSettings settings, Func<CancellationToken, Task<LoadedModel>> load, TextWriter output)
    {
        var server = new EngineServer(settings);
        return await server.RunAsync(load, output).ConfigureAwait(false);
    }

    private async Task<int> RunAsync(Func<CancellationToken, Task<LoadedModel>> load, TextWriter output)
    {
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        var app = Build();
        await app.StartAsync().ConfigureAwait(false);
        await output.WriteLineAsync($"listening {BoundUrl(app)}").ConfigureAwait(false);
        await output.FlushAsync().ConfigureAwait(false);
        LoadedModel? model = null;
        try
        {
            try
            {
                model = await load(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return 0;
            }
            _tokenizer = model.Tokenizer;
            _scheduler = new BatchScheduler(model.Engine, _settings.MaxBatch, _settings.MaxWaiting);
            await output.WriteLineAsync($"ready: {_settings.ModelName}, {model.Engine.Plan.Slots} of {model.Engine.Config.TotalExperts} experts in slots, " +
                $"max batch {_settings.MaxBatch}, {(model.Tokenizer is null ? "token ids only (no tokenizer.json)" : "text in and out")}").ConfigureAwait(false);
            await output.FlushAsync().ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.Infinite, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            _draining = true;
            var running = _scheduler.Metrics.Running + _scheduler.Metrics.Waiting;
            await output.WriteLineAsync($"draining: {running} requests in flight, at most {_settings.DrainTimeout.TotalSeconds:0.#} s").ConfigureAwait(false);
            await output.FlushAsync().ConfigureAwait(false);
            var drained = await Task.WhenAny(_scheduler.BeginDrain(), Task.Delay(_settings.DrainTimeout)).ConfigureAwait(false);
            var cut = _scheduler.Metrics.Running + _scheduler.Metrics.Waiting;
            await _scheduler.DisposeAsync().ConfigureAwait(false);
            await output.WriteLineAsync(cut == 0 ? "drained" : $"drain deadline passed: {cut} requests cut").ConfigureAwait(false);
            await output.FlushAsync().ConfigureAwait(false);
            return 0;
        }
        finally
        {
            // Handlers still writing their last chunk get a moment; then the listener closes.
            using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
                await app.StopAsync(grace.Token).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
            if (model is not null)
            {
                await model.Engine.DisposeAsync().ConfigureAwait(false);
                await model.Engine.Source.DisposeAsync().ConfigureAwait(false);
                model.Engine.Device.Dispose();
                model.Tokenizer?.Dispose();
            }
        }
    }

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        _stop.Cancel();
    }

    private WebApplication Build()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IHostLifetime, QuietLifetime>();
        builder.WebHost.UseUrls(_settings.Listen.GetLeftPart(UriPartial.Authority));
        var app = builder.Build();
        var completions = new CompletionHandler(_settings, () => _scheduler, () => _tokenizer, () => _draining);
        app.MapPost("/v1/completions", (HttpContext c) => completions.HandleAsync(c, chat: false));
        app.MapPost("/v1/chat/completions", (HttpContext c) => completions.HandleAsync(c, chat: true));
        app.MapGet("/v1/models", WriteModelsAsync);
        app.MapGet("/healthz", (HttpContext c) =>
        {
            var (status, text) = _scheduler is null ? (503, "loading\n") : _draining ? (503, "draining\n") : (200, "ok\n");
            c.Response.StatusCode = status;
            return c.Response.WriteAsync(text);
        });
        app.MapGet("/metrics", (HttpContext c) =>
        {
            c.Response.ContentType = MetricsExposition.ContentType;
            return c.Response.WriteAsync(MetricsExposition.Render(_scheduler, _scheduler is not null, _draining));
        });
        return app;
    }

    private async Task WriteModelsAsync(HttpContext context)
    {
        context.Response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(context.Response.Body, JsonOutput.Options);
        json.WriteStartObject();
        json.WriteString("object", "list");
        json.WriteStartArray("data");
        json.WriteStartObject();
        json.WriteString("id", _settings.ModelName);
        json.WriteString("object", "model");
        json.WriteNumber("created", 0);
        json.WriteString("owned_by", "fabric");
        if (_scheduler is { } s)
            json.WriteNumber("max_model_len", s.MaxSequenceLength);
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
        await json.FlushAsync().ConfigureAwait(false);
    }

    private static string BoundUrl(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        return addresses?.FirstOrDefault()?.TrimEnd('/') ?? "";
    }
}
