using System.Buffers;
using System.Text;
using System.Text.Json;
using Fabric.Engine.Runtime;
using Fabric.Engine.Serving;
using Fabric.Model.Tokenization;
using Microsoft.AspNetCore.Http;

namespace Fabric.Engine.Server;

/// <summary>
/// <c>POST /v1/completions</c> and <c>/v1/chat/completions</c>: reads the request, turns the prompt (text, token ids,
/// or chat messages through the chat template) into token ids, queues it on the scheduler, and answers with one JSON
/// body or, with <c>stream</c>, server-sent events in OpenAI's chunk format ending with <c>data: [DONE]</c>. Text is
/// detokenized incrementally (never splitting a character) and cut at the first <c>stop</c> string. A client that
/// goes away cancels its request, which frees its KV lane at the next step.
/// </summary>
internal sealed class CompletionHandler
{
    private const int DefaultCompletionTokens = 16;
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    private readonly ServeSettings _settings;
    private readonly Func<BatchScheduler?> _scheduler;
    private readonly Func<TextTokenizer?> _tokenizer;
    private readonly Func<bool> _draining;

    public CompletionHandler(ServeSettings settings, Func<BatchScheduler?> scheduler, Func<TextTokenizer?> tokenizer, Func<bool> draining)
    {
        _settings = settings;
        _scheduler = scheduler;
        _tokenizer = tokenizer;
        _draining = draining;
    }

    public async Task HandleAsync(HttpContext context, bool chat)
    {
        try
        {
            await CompleteAsync(context, chat).ConfigureAwait(false);
        }
        catch (OpenAiError e) when (!context.Response.HasStarted)
        {
            await e.WriteAsync(context.Response).ConfigureAwait(false);
        }
        catch (Exception e) when ((e is OperationCanceledException or IOException) && context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its request was cancelled with it.
        }
    }

    private async Task CompleteAsync(HttpContext context, bool chat)
    {
        var scheduler = _scheduler();
        if (scheduler is null)
            throw new OpenAiError(StatusCodes.Status503ServiceUnavailable, "The model is still loading; retry shortly.", "service_unavailable");
        if (_draining())
            throw new OpenAiError(StatusCodes.Status503ServiceUnavailable, "The server is shutting down and admits no new requests.", "service_unavailable");
        var body = await ReadBodyAsync(context.Request).ConfigureAwait(false);
        var request = CompletionRequest.Parse(body, chat);
        if (request.Model is not null && request.Model != _settings.ModelName)
            throw new OpenAiError(StatusCodes.Status404NotFound, $"'model' {request.Model} does not exist here; this server serves {_settings.ModelName}.", param: "model", code: "model_not_found");
        var tokenizer = _tokenizer();
        var prompt = Tokenize(request, tokenizer, scheduler.Engine.Config.VocabSize);
        var context_ = scheduler.MaxSequenceLength;
        if (prompt.Length > context_)
            throw new OpenAiError(StatusCodes.Status400BadRequest,
                $"This model's maximum context length is {context_} tokens, but the prompt has {prompt.Length}.", param: chat ? "messages" : "prompt", code: "context_length_exceeded");
        // The last generated token is never run through the model, so prompt + max_tokens − 1 positions must fit.
        var room = context_ - prompt.Length + 1;
        var maxTokens = request.MaxTokens ?? Math.Min(room, chat ? room : DefaultCompletionTokens);
        if (maxTokens > room)
            throw new OpenAiError(StatusCodes.Status400BadRequest,
                $"'max_tokens' {maxTokens} and the prompt's {prompt.Length} tokens exceed this model's maximum context length of {context_} tokens.", param: "max_tokens", code: "context_length_exceeded");

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        var sampler = new Sampler(request.Temperature, request.TopP, request.Seed ?? Random.Shared.Next());
        var generation = new GenerationRequest(prompt, maxTokens, sampler, tokenizer?.StopTokenIds ?? [], cancel.Token);
        switch (scheduler.TryEnqueue(generation))
        {
            case AdmissionRefusal.QueueFull:
                throw new OpenAiError(StatusCodes.Status429TooManyRequests,
                    $"The server is at capacity ({scheduler.MaxBatch} running, {scheduler.MaxWaiting} waiting); retry later.", "rate_limit_error");
            case AdmissionRefusal.Draining:
                throw new OpenAiError(StatusCodes.Status503ServiceUnavailable, "The server is shutting down and admits no new requests.", "service_unavailable");
        }
        var output = new Output(request, tokenizer, _settings.ModelName);
        try
        {
            if (request.Stream)
                await StreamAsync(context.Response, generation, output, cancel, context.RequestAborted).ConfigureAwait(false);
            else
                await AnswerAsync(context.Response, generation, output, cancel).ConfigureAwait(false);
        }
        finally
        {
            // Whatever happened to the response, the request leaves the batch.
            await cancel.CancelAsync().ConfigureAwait(false);
        }
    }

    private static int[] Tokenize(CompletionRequest request, TextTokenizer? tokenizer, int vocab)
    {
        int[] ids;
        if (request.PromptIds is { } given)
        {
            ids = given;
        }
        else
        {
            var field = request.Chat ? "messages" : "prompt";
            if (tokenizer is null)
                throw OpenAiError.BadField(field, $"This server has no tokenizer (the checkpoint has no tokenizer.json), so '{field}' must be given as token ids ('prompt': [1, 2, 3]).");
            try
            {
                ids = request.Chat ? tokenizer.EncodeChat(request.Messages!) : tokenizer.Encode(request.PromptText!, addSpecialTokens: true);
            }
            catch (ArgumentException e)
            {
                throw OpenAiError.BadField(field, $"'{field}' cannot be tokenized: {e.Message}");
            }
        }
        if (ids.Length == 0)
            throw OpenAiError.BadField(request.Chat ? "messages" : "prompt", $"'{(request.Chat ? "messages" : "prompt")}' is empty; give at least one token.");
        for (var i = 0; i < ids.Length; i++)
        {
            if (ids[i] >= vocab)
                throw OpenAiError.BadField("prompt", $"'prompt' item {i} ({ids[i]}) is outside the model's vocabulary of {vocab} tokens.");
        }
        return ids;
    }

    private static async Task AnswerAsync(HttpResponse response, GenerationRequest generation, Output output, CancellationTokenSource cancel)
    {
        var text = new StringBuilder();
        await foreach (var token in generation.Tokens.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            text.Append(output.Add(token));
            if (output.Stops.Stopped)
            {
                await cancel.CancelAsync().ConfigureAwait(false);
                break;
            }
        }
        await generation.Ended.ConfigureAwait(false);
        if (generation.Finish == FinishReason.Error && !output.Stops.Stopped)
            throw new OpenAiError(StatusCodes.Status500InternalServerError, generation.Error ?? "The engine failed.", "server_error");
        text.Append(output.Flush());
        response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(response.Body, JsonOutput.Options);
        output.WriteHead(json, chunk: false);
        json.WriteStartArray("choices");
        json.WriteStartObject();
        json.WriteNumber("index", 0);
        if (output.Chat)
        {
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            json.WriteString("content", text.ToString());
            json.WriteEndObject();
        }
        else
        {
            json.WriteString("text", text.ToString());
        }
        json.WriteNull("logprobs");
        json.WriteString("finish_reason", output.FinishReason(generation));
        output.WriteTokenIds(json);
        json.WriteEndObject();
        json.WriteEndArray();
        output.WriteUsage(json, generation);
        json.WriteEndObject();
        await json.FlushAsync().ConfigureAwait(false);
    }

    private static async Task StreamAsync(HttpResponse response, GenerationRequest generation, Output output, CancellationTokenSource cancel, CancellationToken aborted)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        if (output.Chat)
            await WriteChunkAsync(response, output, "", null, role: true, aborted).ConfigureAwait(false);
        await foreach (var token in generation.Tokens.ReadAllAsync(aborted).ConfigureAwait(false))
        {
            var piece = output.Add(token);
            await WriteChunkAsync(response, output, piece, null, role: false, aborted, token).ConfigureAwait(false);
            if (output.Stops.Stopped)
            {
                await cancel.CancelAsync().ConfigureAwait(false);
                break;
            }
        }
        await generation.Ended.ConfigureAwait(false);
        if (generation.Finish == FinishReason.Error && !output.Stops.Stopped)
        {
            var error = new OpenAiError(StatusCodes.Status500InternalServerError, generation.Error ?? "The engine failed.", "server_error");
            await WriteEventAsync(response, json => error.WriteTo(json), aborted).ConfigureAwait(false);
        }
        else
        {
            await WriteChunkAsync(response, output, output.Flush(), output.FinishReason(generation), role: false, aborted).ConfigureAwait(false);
            if (output.Request.IncludeUsage)
            {
                await WriteEventAsync(response, json =>
                {
                    output.WriteHead(json, chunk: true);
                    json.WriteStartArray("choices");
                    json.WriteEndArray();
                    output.WriteUsage(json, generation);
                    json.WriteEndObject();
                }, aborted).ConfigureAwait(false);
            }
        }
        await response.Body.WriteAsync(Done, aborted).ConfigureAwait(false);
        await response.Body.FlushAsync(aborted).ConfigureAwait(false);
    }

    private static Task WriteChunkAsync(HttpResponse response, Output output, string text, string? finish, bool role, CancellationToken aborted, int? token = null) =>
        WriteEventAsync(response, json =>
        {
            output.WriteHead(json, chunk: true);
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            if (output.Chat)
            {
                json.WriteStartObject("delta");
                if (role)
                    json.WriteString("role", "assistant");
                if (role || text.Length > 0 || finish is null)
                    json.WriteString("content", text);
                json.WriteEndObject();
            }
            else
            {
                json.WriteString("text", text);
            }
            json.WriteNull("logprobs");
            if (finish is null)
                json.WriteNull("finish_reason");
            else
                json.WriteString("finish_reason", finish);
            if (token is { } t)
            {
                json.WriteStartArray("token_ids");
                json.WriteNumberValue(t);
                json.WriteEndArray();
            }
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }, aborted);

    private static async Task WriteEventAsync(HttpResponse response, Action<Utf8JsonWriter> write, CancellationToken aborted)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        buffer.Write("data: "u8);
        using (var json = new Utf8JsonWriter(buffer, JsonOutput.Options))
            write(json);
        buffer.Write("\n\n"u8);
        await response.Body.WriteAsync(buffer.WrittenMemory, aborted).ConfigureAwait(false);
        await response.Body.FlushAsync(aborted).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        using var memory = new MemoryStream();
        await request.Body.CopyToAsync(memory, request.HttpContext.RequestAborted).ConfigureAwait(false);
        return memory.ToArray();
    }

    /// <summary>One response's text state: detokenizer, stop strings, generated ids, id and timestamp.</summary>
    private sealed class Output
    {
        private readonly IncrementalDecoder? _decoder;
        private readonly List<int> _ids = [];
        private readonly string _model;
        private readonly string _id;
        private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        public Output(CompletionRequest request, TextTokenizer? tokenizer, string model)
        {
            Request = request;
            _decoder = tokenizer?.CreateIncrementalDecoder();
            Stops = new StopStrings(request.Stop);
            _model = model;
            _id = (request.Chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];
        }

        public CompletionRequest Request { get; }

        public bool Chat => Request.Chat;

        public StopStrings Stops { get; }

        /// <summary>The text now safe to send after <paramref name="token"/>.</summary>
        public string Add(int token)
        {
            _ids.Add(token);
            return _decoder is null ? "" : Stops.Append(_decoder.Append(token));
        }

        public string Flush() => _decoder is null ? "" : Stops.Append(_decoder.Flush()) + Stops.Flush();

        public string FinishReason(GenerationRequest generation) =>
            Stops.Stopped || generation.Finish == Serving.FinishReason.Stop ? "stop" : "length";

        public void WriteHead(Utf8JsonWriter json, bool chunk)
        {
            json.WriteStartObject();
            json.WriteString("id", _id);
            json.WriteString("object", Chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
            json.WriteNumber("created", _created);
            json.WriteString("model", _model);
            json.WriteNull("system_fingerprint");
        }

        public void WriteTokenIds(Utf8JsonWriter json)
        {
            json.WriteStartArray("token_ids");
            foreach (var id in _ids)
                json.WriteNumberValue(id);
            json.WriteEndArray();
        }

        public void WriteUsage(Utf8JsonWriter json, GenerationRequest generation)
        {
            json.WriteStartObject("usage");
            json.WriteNumber("prompt_tokens", generation.Prompt.Length);
            json.WriteNumber("completion_tokens", _ids.Count);
            json.WriteNumber("total_tokens", generation.Prompt.Length + _ids.Count);
            json.WriteEndObject();
        }
    }
}
