using System.Text.Encodings.Web;
using System.Text.Json;

namespace Fabric.Model.Tokenization;

/// <summary>
/// The tokenizer files of a generated checkpoint: a byte-level BPE of exactly vocab_size ids, so that any text encodes
/// and every id the model can emit decodes. Ids 0 and 1 are the special tokens &lt;s&gt; (BOS) and &lt;/s&gt; (EOS),
/// then come the 243 bytes that occur in UTF-8 (all but 0xC0, 0xC1 and 0xF5–0xFF), then merges of English letters
/// and word starts (common pieces first, then every letter pair, triple, ...) up to vocab_size. Encoding adds BOS,
/// and the chat template is Mixtral-Instruct's, as for the Mixtral checkpoints the generator writes.
/// </summary>
public static class GeneratedTokenizer
{
    /// <summary>BOS, EOS and the 243 UTF-8 bytes: the smallest vocabulary a generated tokenizer can have.</summary>
    public const int MinimumVocabSize = 2 + 243;

    public const string BosToken = "<s>";
    public const string EosToken = "</s>";

    private const string Letters = "etaoinshrdlcumwfgypbvkjxqz";

    private static readonly string[] CommonPieces =
    [
        "Ġt", "he", "Ġa", "in", "th", "er", "Ġthe", "on", "Ġs", "re", "an", "at", "en", "Ġo", "Ġw", "ed", "nd", "es",
        "Ġb", "it", "or", "is", "Ġc", "ing", "Ġf", "Ġp", "ou", "Ġm", "ar", "Ġin", "Ġand", "Ġto", "Ġof", "al", "le", "Ġd",
        "Ġh", "ion", "Ġis", "Ġre", "Ġe", "Ġl", "Ġn", "Ġg", "Ġthat", "Ġfor", "Ġit", "Ġon", "Ġwith", "Ġas", "Ġbe",
    ];

    private const string MixtralChatTemplate =
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
        + "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

    /// <summary>Writes tokenizer.json and tokenizer_config.json for <paramref name="config"/> into <paramref name="directory"/>.</summary>
    public static void Write(string directory, ModelConfig config)
    {
        if (config.VocabSize < MinimumVocabSize)
            throw new CheckpointException($"The generator's tokenizer needs vocab_size ≥ {MinimumVocabSize} (BOS, EOS and the 243 bytes of UTF-8), not {config.VocabSize}.");
        var (vocabulary, merges) = Build(config.VocabSize);
        var options = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

        using (var stream = File.Create(Path.Combine(directory, TextTokenizer.TokenizerFileName)))
        using (var json = new Utf8JsonWriter(stream, options))
        {
            json.WriteStartObject();
            json.WriteString("version", "1.0");
            json.WriteNull("truncation");
            json.WriteNull("padding");
            json.WriteStartArray("added_tokens");
            foreach (var (id, content) in new[] { (0, BosToken), (1, EosToken) })
            {
                json.WriteStartObject();
                json.WriteNumber("id", id);
                json.WriteString("content", content);
                json.WriteBoolean("single_word", false);
                json.WriteBoolean("lstrip", false);
                json.WriteBoolean("rstrip", false);
                json.WriteBoolean("normalized", false);
                json.WriteBoolean("special", true);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteNull("normalizer");
            WriteByteLevel(json, "pre_tokenizer", useRegex: true);
            WriteByteLevel(json, "post_processor", useRegex: false);
            WriteByteLevel(json, "decoder", useRegex: false);
            json.WriteStartObject("model");
            json.WriteString("type", "BPE");
            json.WriteNull("dropout");
            json.WriteNull("unk_token");
            json.WriteNull("continuing_subword_prefix");
            json.WriteNull("end_of_word_suffix");
            json.WriteBoolean("fuse_unk", false);
            json.WriteBoolean("byte_fallback", false);
            json.WriteStartObject("vocab");
            for (var id = 0; id < vocabulary.Count; id++)
                json.WriteNumber(vocabulary[id], id);
            json.WriteEndObject();
            json.WriteStartArray("merges");
            foreach (var (left, right) in merges)
                json.WriteStringValue(left + " " + right);
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
        }

        using (var stream = File.Create(Path.Combine(directory, TextTokenizer.ConfigFileName)))
        using (var json = new Utf8JsonWriter(stream, options))
        {
            json.WriteStartObject();
            json.WriteBoolean("add_bos_token", true);
            json.WriteBoolean("add_eos_token", false);
            json.WriteString("bos_token", BosToken);
            json.WriteString("eos_token", EosToken);
            json.WriteBoolean("clean_up_tokenization_spaces", false);
            json.WriteNumber("model_max_length", config.MaxPositionEmbeddings);
            json.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
            json.WriteString("chat_template", MixtralChatTemplate);
            json.WriteEndObject();
        }
    }

    /// <summary>The token texts by id (the two special tokens stand in the vocabulary too) and the merges, in rank order.</summary>
    private static (List<string> Vocabulary, List<(string Left, string Right)> Merges) Build(int vocabSize)
    {
        var vocabulary = new List<string> { BosToken, EosToken };
        for (var b = 0; b < 256; b++)
            if (b is not (0xC0 or 0xC1) && b < 0xF5)
                vocabulary.Add(ByteLevelAlphabet.Of((byte)b).ToString());
        var known = new HashSet<string>(vocabulary, StringComparer.Ordinal);
        var merges = new List<(string, string)>();

        void TryAdd(string token)
        {
            if (vocabulary.Count >= vocabSize || known.Contains(token))
                return;
            for (var split = token.Length - 1; split > 0; split--)
            {
                var (left, right) = (token[..split], token[split..]);
                if (!known.Contains(left) || !known.Contains(right))
                    continue;
                merges.Add((left, right));
                vocabulary.Add(token);
                known.Add(token);
                return;
            }
        }

        var space = ByteLevelAlphabet.Of((byte)' ');
        foreach (var piece in CommonPieces)
            TryAdd(piece.Replace('Ġ', space));
        // Then systematically: word starts and letter runs one letter longer each round.
        List<string> runs = [.. Letters.Select(c => c.ToString())];
        while (vocabulary.Count < vocabSize)
        {
            foreach (var run in runs)
                TryAdd(space + run);
            List<string> longer = [];
            foreach (var run in runs)
                foreach (var letter in Letters)
                {
                    TryAdd(run + letter);
                    longer.Add(run + letter);
                    if (vocabulary.Count >= vocabSize)
                        break;
                }
            runs = longer;
        }
        return (vocabulary, merges);
    }

    private static void WriteByteLevel(Utf8JsonWriter json, string name, bool useRegex)
    {
        json.WriteStartObject(name);
        json.WriteString("type", "ByteLevel");
        json.WriteBoolean("add_prefix_space", false);
        json.WriteBoolean("trim_offsets", false);
        json.WriteBoolean("use_regex", useRegex);
        json.WriteEndObject();
    }
}
