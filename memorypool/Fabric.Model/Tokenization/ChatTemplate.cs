using System.Text;
using System.Text.Json;

namespace Fabric.Model.Tokenization;

/// <summary>
/// A chat format as text around each message: <see cref="Begin"/> once, then each message through the format of its
/// role, then <see cref="GenerationPrompt"/> when the model is to answer. In the formats, <c>{content}</c> stands for
/// the message text and <c>{bos}</c> / <c>{eos}</c> for the tokenizer's BOS and EOS tokens. The built-in families
/// are in <see cref="ChatTemplates"/>; <see cref="Load"/> reads one from a JSON file (<c>--chat-template FILE</c>):
/// <code>
/// { "begin": "{bos}", "system": "[SYS]{content}[/SYS]", "user": "[INST]{content}[/INST]",
///   "assistant": "{content}{eos}", "generation_prompt": "", "stop": ["[/INST]"] }
/// </code>
/// </summary>
public sealed record ChatTemplate
{
    private const string Content = "{content}";

    /// <summary>The family name ("chatml", "mixtral", "deepseek", "olmoe") or the file a template came from.</summary>
    public required string Name { get; init; }

    /// <summary>Text before the first message.</summary>
    public string Begin { get; init; } = "";

    /// <summary>Format of a system message; null folds system text into the first user message (Mistral's way).</summary>
    public string? System { get; init; }

    public required string User { get; init; }
    public required string Assistant { get; init; }

    /// <summary>Text after the last message that asks the model for the assistant's turn.</summary>
    public string GenerationPrompt { get; init; } = "";

    /// <summary>Tokens that end a turn in this format; the tokenizer stops generation at those it has.</summary>
    public IReadOnlyList<string> StopTokens { get; init; } = [];

    /// <summary>
    /// The prompt for <paramref name="messages"/>. A role other than system, user or assistant throws
    /// <see cref="ArgumentException"/> with one sentence naming it.
    /// </summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, string bos, string eos)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var text = new StringBuilder(Fill(Begin, null, bos, eos));
        string? pendingSystem = null;
        foreach (var message in messages)
        {
            switch (message.Role)
            {
                case "system" when System is null:
                    pendingSystem = pendingSystem is null ? message.Content : pendingSystem + "\n\n" + message.Content;
                    break;
                case "system":
                    text.Append(Fill(System, message.Content, bos, eos));
                    break;
                case "user":
                    var content = pendingSystem is null ? message.Content : pendingSystem + "\n\n" + message.Content;
                    pendingSystem = null;
                    text.Append(Fill(User, content, bos, eos));
                    break;
                case "assistant":
                    text.Append(Fill(Assistant, message.Content, bos, eos));
                    break;
                default:
                    throw new ArgumentException($"The chat template '{Name}' has no format for the role '{message.Role}'; use system, user or assistant.", nameof(messages));
            }
        }
        if (pendingSystem is not null)
            text.Append(Fill(User, pendingSystem, bos, eos));
        if (addGenerationPrompt)
            text.Append(Fill(GenerationPrompt, null, bos, eos));
        return text.ToString();
    }

    /// <summary>Reads a template from a JSON file; a missing or malformed file throws <see cref="CheckpointException"/>.</summary>
    public static ChatTemplate Load(string path)
    {
        if (!File.Exists(path))
            throw new CheckpointException($"The chat template file {path} does not exist.");
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new CheckpointException($"{path}: a chat template file holds a JSON object with user, assistant and generation_prompt formats.");
            return new ChatTemplate
            {
                Name = path,
                Begin = Optional(root, "begin") ?? "",
                System = Optional(root, "system"),
                User = Required(root, path, "user"),
                Assistant = Required(root, path, "assistant"),
                GenerationPrompt = Optional(root, "generation_prompt") ?? "",
                StopTokens = root.TryGetProperty("stop", out var stop) && stop.ValueKind == JsonValueKind.Array
                    ? [.. stop.EnumerateArray().Select(s => s.GetString() ?? throw new CheckpointException($"{path}: \"stop\" must list strings."))]
                    : [],
            };
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path} is not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new CheckpointException($"{path}: a chat template's formats and stop tokens must be strings ({e.Message}).", e);
        }
        catch (IOException e)
        {
            throw new CheckpointException($"The chat template file {path} cannot be read: {e.Message}", e);
        }
    }

    private static string Fill(string format, string? content, string bos, string eos)
    {
        var filled = format.Replace("{bos}", bos, StringComparison.Ordinal).Replace("{eos}", eos, StringComparison.Ordinal);
        // The message text goes in last, so that "{bos}" typed by a user stays text.
        return content is null ? filled : filled.Replace(Content, content, StringComparison.Ordinal);
    }

    private static string? Optional(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) ? value.GetString() : null;

    private static string Required(JsonElement root, string path, string name) =>
        Optional(root, name) ?? throw new CheckpointException($"{path}: a chat template file needs a \"{name}\" format.");
}
