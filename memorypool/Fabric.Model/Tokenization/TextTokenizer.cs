using System.Text;
using System.Text.Json;
using HuggingFaceTokenizer = Tokenizers.DotNet.Tokenizer;
using HuggingFaceTokenizerException = Tokenizers.DotNet.TokenizerException;

namespace Fabric.Model.Tokenization;

/// <summary>
/// A checkpoint's tokenizer: its Hugging Face <c>tokenizer.json</c> run by Hugging Face's own tokenizers library
/// (through Tokenizers.DotNet), with the BOS/EOS tokens and chat template of <c>tokenizer_config.json</c>.
/// Encode and Decode may be called from several threads at once; an <see cref="IncrementalDecoder"/> belongs to one
/// stream. Owns a native tokenizer: dispose it.
/// </summary>
public sealed class TextTokenizer : IDisposable
{
    public const string TokenizerFileName = "tokenizer.json";
    public const string ConfigFileName = "tokenizer_config.json";

    private readonly HuggingFaceTokenizer _native;
    private readonly TokenizerDescription _description;

    private TextTokenizer(HuggingFaceTokenizer native, TokenizerDescription description, ChatTemplate template)
    {
        _native = native;
        _description = description;
        ChatTemplate = template;
        BosTokenId = IdOf(description.BosToken);
        EosTokenId = IdOf(description.EosToken);
        var stops = new SortedSet<int>();
        if (EosTokenId is { } eos)
            stops.Add(eos);
        foreach (var token in template.StopTokens)
            if (IdOf(token) is { } id)
                stops.Add(id);
        StopTokenIds = stops;
    }

    /// <summary>Highest token id the tokenizer knows (vocabulary and added tokens), plus one.</summary>
    public int VocabSize => _description.VocabSize;

    public int? BosTokenId { get; }
    public int? EosTokenId { get; }

    /// <summary>EOS and the end-of-turn tokens of the chat template: generation stops at any of them.</summary>
    public IReadOnlyCollection<int> StopTokenIds { get; }

    /// <summary>The chat format <see cref="ApplyChatTemplate"/> renders with.</summary>
    public ChatTemplate ChatTemplate { get; }

    /// <summary>The added tokens marked special (what decoding skips), by id.</summary>
    public IReadOnlyDictionary<int, string> SpecialTokens => _description.SpecialTokens;

    /// <summary>Whether <paramref name="checkpointDirectory"/> holds a tokenizer.json.</summary>
    public static bool Exists(string checkpointDirectory) => File.Exists(Path.Combine(checkpointDirectory, TokenizerFileName));

    /// <summary>Loads the tokenizer of <paramref name="checkpointDirectory"/> with the checkpoint's chat format.</summary>
    public static TextTokenizer Load(string checkpointDirectory) => Load(checkpointDirectory, null);

    /// <summary>
    /// Loads the tokenizer of <paramref name="checkpointDirectory"/>. <paramref name="chatTemplateFile"/>, when given,
    /// is a chat template JSON file (<see cref="ChatTemplate.Load"/>) or the name of a built-in one (chatml, mixtral,
    /// deepseek, olmoe) and overrides the checkpoint's. A missing or unreadable file throws
    /// <see cref="CheckpointException"/> with one sentence naming it.
    /// </summary>
    public static TextTokenizer Load(string checkpointDirectory, string? chatTemplateFile)
    {
        var tokenizerPath = Path.GetFullPath(Path.Combine(checkpointDirectory, TokenizerFileName));
        if (!File.Exists(tokenizerPath))
            throw new CheckpointException($"{tokenizerPath} does not exist; text in and out needs the checkpoint's Hugging Face tokenizer.json.");
        var description = TokenizerDescription.Read(tokenizerPath, Path.Combine(checkpointDirectory, ConfigFileName));
        var template = chatTemplateFile is null
            ? ChatTemplates.ForJinjaTemplate(description.ChatTemplate) ?? ChatTemplates.ForModelType(ModelType(checkpointDirectory)) ?? ChatTemplates.ChatMl
            : File.Exists(chatTemplateFile) ? ChatTemplate.Load(chatTemplateFile) : ChatTemplates.Named(chatTemplateFile) ?? ChatTemplate.Load(chatTemplateFile);
        HuggingFaceTokenizer native;
        try
        {
            native = new HuggingFaceTokenizer(tokenizerPath);
        }
        catch (HuggingFaceTokenizerException e)
        {
            throw new CheckpointException($"{tokenizerPath} is not a tokenizer Hugging Face's tokenizers library can read: {e.Message}", e);
        }
        return new TextTokenizer(native, description, template);
    }

    /// <summary>
    /// Token ids of <paramref name="text"/>; added tokens written in the text (such as <c>&lt;|im_start|&gt;</c>) become
    /// their ids. <paramref name="addSpecialTokens"/> adds BOS / EOS as tokenizer_config.json's add_bos_token and
    /// add_eos_token say, else as tokenizer.json's post-processor says (as Hugging Face transformers does).
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var processed = Encode(text);
        var (prefix, suffix) = (_description.TemplatePrefix, _description.TemplateSuffix);
        var ids = prefix + suffix == 0 || processed.Length < prefix + suffix ? processed : processed[prefix..^suffix];
        if (!addSpecialTokens)
            return ids;
        if (_description.AddBosToken is null && _description.AddEosToken is null)
            return processed;
        var bos = _description.AddBosToken == true && BosTokenId is not null;
        var eos = _description.AddEosToken == true && EosTokenId is not null;
        if (!bos && !eos)
            return ids;
        var result = new int[ids.Length + (bos ? 1 : 0) + (eos ? 1 : 0)];
        if (bos)
            result[0] = BosTokenId!.Value;
        ids.CopyTo(result, bos ? 1 : 0);
        if (eos)
            result[^1] = EosTokenId!.Value;
        return result;
    }

    /// <summary>
    /// The text of <paramref name="ids"/>. Ids the tokenizer does not know decode to nothing; bytes that do not form
    /// UTF-8 decode to U+FFFD. <paramref name="skipSpecialTokens"/> leaves out the special added tokens.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        if (ids.IsEmpty)
            return "";
        if (skipSpecialTokens)
            return DecodeNative(ids);
        // The library always skips special tokens; keep them by decoding the runs between them.
        var text = new StringBuilder();
        var start = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            if (!_description.SpecialTokens.TryGetValue(ids[i], out var special))
                continue;
            text.Append(DecodeNative(ids[start..i])).Append(special);
            start = i + 1;
        }
        return text.Append(DecodeNative(ids[start..])).ToString();
    }

    /// <summary>A decoder for one stream of generated tokens (see <see cref="IncrementalDecoder"/>).</summary>
    public IncrementalDecoder CreateIncrementalDecoder(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);

    /// <summary>
    /// The prompt text for <paramref name="messages"/> in the <see cref="ChatTemplate"/>; it already holds the BOS
    /// token where the format wants one, so encode it with <c>addSpecialTokens: false</c> (or use <see cref="EncodeChat"/>).
    /// </summary>
    public string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true) =>
        ChatTemplate.Render(messages, addGenerationPrompt, _description.BosToken ?? "", _description.EosToken ?? "");

    /// <summary>Token ids of the chat prompt for <paramref name="messages"/>.</summary>
    public int[] EncodeChat(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true) =>
        Encode(ApplyChatTemplate(messages, addGenerationPrompt), addSpecialTokens: false);

    /// <summary>The id of the added token <paramref name="token"/>, or null.</summary>
    public int? IdOf(string? token) =>
        token is not null && _description.AddedTokenIds.TryGetValue(token, out var id) ? id : null;

    public void Dispose() => _native.Dispose();

    private int[] Encode(string text)
    {
        try
        {
            var ids = _native.Encode(WellFormed(text));
            var result = new int[ids.Length];
            for (var i = 0; i < ids.Length; i++)
                result[i] = checked((int)ids[i]);
            return result;
        }
        catch (HuggingFaceTokenizerException e)
        {
            throw new ArgumentException($"The tokenizer cannot encode this text: {e.Message}", nameof(text), e);
        }
    }

    /// <summary>The library takes well-formed text only: a lone surrogate becomes U+FFFD, as UTF-8 encoding does.</summary>
    private static string WellFormed(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
            return text;
        var builder = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
            builder.Append(rune.ToString());
        return builder.ToString();
    }

    private string DecodeNative(ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty)
            return "";
        var native = new uint[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            if (ids[i] < 0)
                throw new ArgumentOutOfRangeException(nameof(ids), ids[i], "Token ids are never negative.");
            native[i] = (uint)ids[i];
        }
        try
        {
            return _native.Decode(native);
        }
        catch (HuggingFaceTokenizerException e)
        {
            throw new ArgumentException($"The tokenizer cannot decode these ids: {e.Message}", nameof(ids), e);
        }
    }

    private static string? ModelType(string checkpointDirectory)
    {
        var path = Path.Combine(checkpointDirectory, "config.json");
        if (!File.Exists(path))
            return null;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("model_type", out var type)
                && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path} is not valid JSON: {e.Message}", e);
        }
    }
}
