using System.Text.Json;
using Fabric.Model.Tokenization;
using Microsoft.AspNetCore.Http;

namespace Fabric.Engine.Server;

/// <summary>
/// The body of <c>POST /v1/completions</c> or <c>/v1/chat/completions</c>, read as OpenAI defines it. Fields the
/// server does not use are ignored; a malformed one is an <see cref="OpenAiError"/> (400) whose one sentence names it.
/// </summary>
public sealed record CompletionRequest
{
    public required bool Chat { get; init; }

    public string? Model { get; init; }

    /// <summary><c>prompt</c> given as token ids.</summary>
    public int[]? PromptIds { get; init; }

    /// <summary><c>prompt</c> given as text.</summary>
    public string? PromptText { get; init; }

    /// <summary><c>messages</c> of a chat request.</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }

    /// <summary><c>max_tokens</c> (or <c>max_completion_tokens</c>), when given.</summary>
    public int? MaxTokens { get; init; }

    public float Temperature { get; init; } = 1;

    public float TopP { get; init; } = 1;

    public int? Seed { get; init; }

    public IReadOnlyList<string> Stop { get; init; } = [];

    public bool Stream { get; init; }

    /// <summary><c>stream_options.include_usage</c>: a last chunk with usage and no choices.</summary>
    public bool IncludeUsage { get; init; }

    public static CompletionRequest Parse(ReadOnlySpan<byte> body, bool chat)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.ToArray());
        }
        catch (JsonException e)
        {
            throw new OpenAiError(StatusCodes.Status400BadRequest, $"The request body is not valid JSON: {e.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new OpenAiError(StatusCodes.Status400BadRequest, "The request body must be a JSON object.");
            int[]? ids = null;
            string? text = null;
            List<ChatMessage>? messages = null;
            if (chat)
            {
                messages = ReadMessages(root);
            }
            else
            {
                if (!root.TryGetProperty("prompt", out var prompt) || prompt.ValueKind == JsonValueKind.Null)
                    throw OpenAiError.BadField("prompt", "'prompt' is required: a string or a list of token ids.");
                (text, ids) = ReadPrompt(prompt);
            }
            var n = OptionalInt(root, "n");
            if (n is not null && n != 1)
                throw OpenAiError.BadField("n", $"'n' must be 1 (one choice per request); it was {n}.");
            var maxTokens = OptionalInt(root, "max_completion_tokens") ?? OptionalInt(root, "max_tokens");
            if (maxTokens is < 1)
                throw OpenAiError.BadField("max_tokens", $"'max_tokens' must be at least 1; it was {maxTokens}.");
            var temperature = OptionalFloat(root, "temperature") ?? 1;
            if (temperature is < 0 or > 2)
                throw OpenAiError.BadField("temperature", $"'temperature' must lie between 0 and 2; it was {temperature}.");
            var topP = OptionalFloat(root, "top_p") ?? 1;
            if (topP is <= 0 or > 1)
                throw OpenAiError.BadField("top_p", $"'top_p' must lie above 0 and at most 1; it was {topP}.");
            var stream = false;
            if (root.TryGetProperty("stream", out var s) && s.ValueKind != JsonValueKind.Null)
            {
                if (s.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    throw OpenAiError.BadField("stream", "'stream' must be true or false.");
                stream = s.GetBoolean();
            }
            var includeUsage = false;
            if (root.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object
                && so.TryGetProperty("include_usage", out var iu) && iu.ValueKind is JsonValueKind.True)
                includeUsage = true;
            string? model = null;
            if (root.TryGetProperty("model", out var m) && m.ValueKind != JsonValueKind.Null)
            {
                if (m.ValueKind != JsonValueKind.String)
                    throw OpenAiError.BadField("model", "'model' must be a string.");
                model = m.GetString();
            }
            return new CompletionRequest
            {
                Chat = chat,
                Model = model,
                PromptIds = ids,
                PromptText = text,
                Messages = messages,
                MaxTokens = maxTokens,
                Temperature = temperature,
                TopP = topP,
                Seed = OptionalInt(root, "seed"),
                Stop = ReadStop(root),
                Stream = stream,
                IncludeUsage = includeUsage,
            };
        }
    }

    private static (string? Text, int[]? Ids) ReadPrompt(JsonElement prompt)
    {
        if (prompt.ValueKind == JsonValueKind.String)
            return (prompt.GetString(), null);
        if (prompt.ValueKind == JsonValueKind.Array)
        {
            var length = prompt.GetArrayLength();
            if (length == 1 && prompt[0].ValueKind is JsonValueKind.String or JsonValueKind.Array)
                return ReadPrompt(prompt[0]);
            if (length == 0)
                throw OpenAiError.BadField("prompt", "'prompt' is empty; give text or at least one token id.");
            var ids = new int[length];
            var i = 0;
            foreach (var e in prompt.EnumerateArray())
            {
                if (e.ValueKind == JsonValueKind.String || e.ValueKind == JsonValueKind.Array)
                    throw OpenAiError.BadField("prompt", "'prompt' holds several prompts; this server takes one prompt per request.");
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var id) || id < 0)
                    throw OpenAiError.BadField("prompt", $"'prompt' item {i} is not a token id (a non-negative integer).");
                ids[i++] = id;
            }
            return (null, ids);
        }
        throw OpenAiError.BadField("prompt", "'prompt' must be a string or a list of token ids.");
    }

    private static List<ChatMessage> ReadMessages(JsonElement root)
    {
        if (!root.TryGetProperty("messages", out var list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
            throw OpenAiError.BadField("messages", "'messages' is required: a non-empty list of {role, content} objects.");
        var messages = new List<ChatMessage>();
        var i = 0;
        foreach (var m in list.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw OpenAiError.BadField("messages", $"'messages[{i}]' needs a string 'role'.");
            var roleName = role.GetString()!;
            if (roleName is not ("system" or "developer" or "user" or "assistant"))
                throw OpenAiError.BadField("messages", $"'messages[{i}].role' must be system, developer, user or assistant; it was '{roleName}'.");
            messages.Add(new ChatMessage(roleName == "developer" ? "system" : roleName, ReadContent(m, i)));
            i++;
        }
        return messages;
    }

    private static string ReadContent(JsonElement message, int index)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
            return "";
        if (content.ValueKind == JsonValueKind.String)
            return content.GetString()!;
        if (content.ValueKind == JsonValueKind.Array)
        {
            var text = new System.Text.StringBuilder();
            foreach (var part in content.EnumerateArray())
            {
                if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.GetString() != "text"
                    || !part.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                    throw OpenAiError.BadField("messages", $"'messages[{index}].content' may only hold text parts ({{\"type\": \"text\", \"text\": ...}}).");
                text.Append(t.GetString());
            }
            return text.ToString();
        }
        throw OpenAiError.BadField("messages", $"'messages[{index}].content' must be a string or a list of text parts.");
    }

    private static string[] ReadStop(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var stop) || stop.ValueKind == JsonValueKind.Null)
            return [];
        string[] result;
        if (stop.ValueKind == JsonValueKind.String)
            result = [stop.GetString()!];
        else if (stop.ValueKind == JsonValueKind.Array && stop.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))
            result = [.. stop.EnumerateArray().Select(e => e.GetString()!)];
        else
            throw OpenAiError.BadField("stop", "'stop' must be a string or a list of up to 4 strings.");
        if (result.Length > 4)
            throw OpenAiError.BadField("stop", $"'stop' holds {result.Length} strings; at most 4 are allowed.");
        if (result.Any(string.IsNullOrEmpty))
            throw OpenAiError.BadField("stop", "'stop' strings must not be empty.");
        return result;
    }

    private static int? OptionalInt(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
            return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v))
            return v;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out var d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue)
            return (int)d;
        throw OpenAiError.BadField(name, $"'{name}' must be an integer.");
    }

    private static float? OptionalFloat(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
            return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out var v) && double.IsFinite(v))
            return (float)v;
        throw OpenAiError.BadField(name, $"'{name}' must be a number.");
    }
}
