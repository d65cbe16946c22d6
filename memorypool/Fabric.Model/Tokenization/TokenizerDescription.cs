using System.Text.Json;

namespace Fabric.Model.Tokenization;

/// <summary>
/// What Fabric reads from a checkpoint's tokenizer files beside what the tokenizer library itself reads: the added
/// tokens of <c>tokenizer.json</c> (ids, and which are special) and, from <c>tokenizer_config.json</c>, the BOS/EOS
/// tokens, whether encoding adds them, and the chat template text.
/// </summary>
internal sealed class TokenizerDescription
{
    /// <summary>Highest token id of the vocabulary or the added tokens, plus one.</summary>
    public required int VocabSize { get; init; }

    /// <summary>Every added token (special or not) by its text.</summary>
    public required IReadOnlyDictionary<string, int> AddedTokenIds { get; init; }

    /// <summary>The added tokens marked special, by id: what decoding skips on request.</summary>
    public required IReadOnlyDictionary<int, string> SpecialTokens { get; init; }

    /// <summary>
    /// Ids a TemplateProcessing post-processor puts before and after a single sequence (the library always applies
    /// it, so encoding without special tokens strips them).
    /// </summary>
    public int TemplatePrefix { get; init; }
    public int TemplateSuffix { get; init; }

    public string? BosToken { get; init; }
    public string? EosToken { get; init; }

    /// <summary>add_bos_token / add_eos_token of tokenizer_config.json; null where it does not say.</summary>
    public bool? AddBosToken { get; init; }
    public bool? AddEosToken { get; init; }

    /// <summary>The checkpoint's Jinja chat template, when its tokenizer_config.json carries one.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Reads <paramref name="tokenizerPath"/> and, when it exists, <paramref name="configPath"/>.</summary>
    public static TokenizerDescription Read(string tokenizerPath, string configPath)
    {
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        var special = new Dictionary<int, string>();
        var maxId = -1;
        var (prefix, suffix) = (0, 0);
        using (var document = ParseFile(tokenizerPath))
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
                throw new CheckpointException($"{tokenizerPath} is not a Hugging Face tokenizer.json (it has no \"model\" object).");
            if (model.TryGetProperty("vocab", out var vocab))
            {
                if (vocab.ValueKind == JsonValueKind.Object)
                {
                    foreach (var entry in vocab.EnumerateObject())
                        if (entry.Value.TryGetInt32(out var id))
                            maxId = Math.Max(maxId, id);
                }
                else if (vocab.ValueKind == JsonValueKind.Array)
                    maxId = Math.Max(maxId, vocab.GetArrayLength() - 1);
            }
            if (root.TryGetProperty("added_tokens", out var tokens) && tokens.ValueKind == JsonValueKind.Array)
            {
                foreach (var token in tokens.EnumerateArray())
                {
                    if (!token.TryGetProperty("id", out var idElement) || !idElement.TryGetInt32(out var id)
                        || !token.TryGetProperty("content", out var contentElement) || contentElement.GetString() is not { } content)
                        throw new CheckpointException($"{tokenizerPath}: an entry of added_tokens lacks an integer id or a content string.");
                    added[content] = id;
                    if (token.TryGetProperty("special", out var isSpecial) && isSpecial.ValueKind == JsonValueKind.True)
                        special[id] = content;
                    maxId = Math.Max(maxId, id);
                }
            }
            if (root.TryGetProperty("post_processor", out var processor))
                (prefix, suffix) = TemplateSpecialTokens(processor);
        }

        if (!File.Exists(configPath))
            return new TokenizerDescription { VocabSize = maxId + 1, AddedTokenIds = added, SpecialTokens = special, TemplatePrefix = prefix, TemplateSuffix = suffix };

        using var config = ParseFile(configPath);
        var c = config.RootElement;
        if (c.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{configPath} must hold a JSON object.");
        return new TokenizerDescription
        {
            VocabSize = maxId + 1,
            AddedTokenIds = added,
            SpecialTokens = special,
            TemplatePrefix = prefix,
            TemplateSuffix = suffix,
            BosToken = TokenText(c, "bos_token"),
            EosToken = TokenText(c, "eos_token"),
            AddBosToken = Flag(c, "add_bos_token"),
            AddEosToken = Flag(c, "add_eos_token"),
            ChatTemplate = TemplateText(c),
        };
    }

    private static JsonDocument ParseFile(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream);
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path} is not valid JSON: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException($"{path} cannot be read: {e.Message}", e);
        }
    }

    private static bool? Flag(JsonElement config, string name) =>
        config.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : null;

    /// <summary>How many ids a TemplateProcessing post-processor (alone or in a Sequence) adds before and after a single sequence.</summary>
    private static (int Prefix, int Suffix) TemplateSpecialTokens(JsonElement processor)
    {
        if (processor.ValueKind != JsonValueKind.Object || !processor.TryGetProperty("type", out var type))
            return (0, 0);
        if (type.GetString() == "Sequence" && processor.TryGetProperty("processors", out var processors) && processors.ValueKind == JsonValueKind.Array)
        {
            foreach (var inner in processors.EnumerateArray())
                if (TemplateSpecialTokens(inner) is var found && found != (0, 0))
                    return found;
            return (0, 0);
        }
        if (type.GetString() != "TemplateProcessing" || !processor.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array)
            return (0, 0);
        var lengths = new List<int?>();
        foreach (var piece in single.EnumerateArray())
            lengths.Add(piece.TryGetProperty("SpecialToken", out var token) ? SpecialTokenLength(processor, token) : null);
        var prefix = lengths.TakeWhile(l => l is not null).Sum(l => l!.Value);
        var suffix = lengths.AsEnumerable().Reverse().TakeWhile(l => l is not null).Sum(l => l!.Value);
        return (prefix, suffix);
    }

    private static int SpecialTokenLength(JsonElement processor, JsonElement token) =>
        token.TryGetProperty("id", out var name) && processor.TryGetProperty("special_tokens", out var tokens)
        && tokens.ValueKind == JsonValueKind.Object && tokens.TryGetProperty(name.GetString() ?? "", out var entry)
        && entry.TryGetProperty("ids", out var ids) && ids.ValueKind == JsonValueKind.Array ? ids.GetArrayLength() : 1;

    /// <summary>A token field is either a string or an AddedToken object with a "content" string.</summary>
    private static string? TokenText(JsonElement config, string name)
    {
        if (!config.TryGetProperty(name, out var value))
            return null;
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
            _ => null,
        };
    }

    /// <summary>chat_template is a string, or a list of {name, template} of which "default" is the chat one.</summary>
    private static string? TemplateText(JsonElement config)
    {
        if (!config.TryGetProperty("chat_template", out var value))
            return null;
        if (value.ValueKind == JsonValueKind.String)
            return value.GetString();
        if (value.ValueKind != JsonValueKind.Array)
            return null;
        foreach (var named in value.EnumerateArray())
            if (named.ValueKind == JsonValueKind.Object && named.TryGetProperty("name", out var n) && n.GetString() == "default"
                && named.TryGetProperty("template", out var t) && t.ValueKind == JsonValueKind.String)
                return t.GetString();
        return null;
    }
}
