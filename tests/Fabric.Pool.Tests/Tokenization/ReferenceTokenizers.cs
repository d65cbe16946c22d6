using System.IO.Compression;
using System.Text.Json;
using Fabric.Model.Tokenization;

namespace Fabric.Pool.Tests.Tokenization;

/// <summary>
/// Qwen3's and DeepSeek-V3's real tokenizer files (TestData/Tokenizers), unpacked into checkpoint-like directories
/// and loaded once for a test class, with the expected ids of TestData/Tokenizers/expected.json.
/// </summary>
public sealed class ReferenceTokenizers : IDisposable
{
    public const string Qwen3 = "qwen3";
    public const string DeepSeekV3 = "deepseek_v3";
    private static readonly string Source = Path.Combine(AppContext.BaseDirectory, "TestData", "Tokenizers");
    private readonly TempDirectory _root = new();
    private readonly Dictionary<string, TextTokenizer> _tokenizers = [];

    public ReferenceTokenizers()
    {
        foreach (var model in new[] { Qwen3, DeepSeekV3 })
            _tokenizers[model] = TextTokenizer.Load(Unpack(model));
    }

    public TextTokenizer this[string model] => _tokenizers[model];

    /// <summary>A fresh checkpoint-like directory holding <paramref name="model"/>'s tokenizer.json and tokenizer_config.json.</summary>
    public string Unpack(string model)
    {
        var directory = Path.Combine(_root.Path, model + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        using (var packed = File.OpenRead(Path.Combine(Source, model, "tokenizer.json.br")))
        using (var brotli = new BrotliStream(packed, CompressionMode.Decompress))
        using (var json = File.Create(Path.Combine(directory, TextTokenizer.TokenizerFileName)))
            brotli.CopyTo(json);
        File.Copy(Path.Combine(Source, model, TextTokenizer.ConfigFileName), Path.Combine(directory, TextTokenizer.ConfigFileName));
        return directory;
    }

    /// <summary>The (model, text, ids) triples of expected.json.</summary>
    public static TheoryData<string, string, int[]> ExpectedEncodings()
    {
        var data = new TheoryData<string, string, int[]>();
        foreach (var (model, element) in Expected())
            foreach (var entry in element.GetProperty("encode_without_special_tokens").EnumerateArray())
                data.Add(model, entry.GetProperty("text").GetString()!, [.. entry.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32())]);
        return data;
    }

    /// <summary>The chat messages of expected.json and the rendering it gives for <paramref name="model"/> (null where none).</summary>
    public static (ChatMessage[] Messages, string? Prompt) ExpectedChat(string model)
    {
        var element = Expected().Single(e => e.Model == model).Element;
        var messages = element.GetProperty("chat_messages").EnumerateArray()
            .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToArray();
        return (messages, element.GetProperty("chat_prompt_with_generation_prompt").GetString());
    }

    public void Dispose()
    {
        foreach (var tokenizer in _tokenizers.Values)
            tokenizer.Dispose();
        _root.Dispose();
    }

    private static IEnumerable<(string Model, JsonElement Element)> Expected()
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Source, "expected.json")));
        return [.. document.RootElement.EnumerateObject().Select(p => (p.Name, p.Value.Clone()))];
    }
}
