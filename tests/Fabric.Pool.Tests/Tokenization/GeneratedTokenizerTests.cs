using System.Text.Json.Nodes;
using CsCheck;
using Fabric.Model;
using Fabric.Model.Tokenization;

namespace Fabric.Pool.Tests.Tokenization;

/// <summary>The tokenizer make-model writes beside a generated checkpoint, loaded back through <see cref="TextTokenizer"/>.</summary>
public sealed class GeneratedTokenizerTests : IDisposable
{
    private readonly TempDirectory _tiny = new();
    private readonly TextTokenizer _tokenizer;

    public GeneratedTokenizerTests()
    {
        GeneratedTokenizer.Write(_tiny.Path, ModelPresets.Tiny);
        _tokenizer = TextTokenizer.Load(_tiny.Path);
    }

    [Fact]
    public void Tokenizer_MatchesTheModelsVocabulary()
    {
        Assert.Equal(ModelPresets.Tiny.VocabSize, _tokenizer.VocabSize);
        Assert.Equal(0, _tokenizer.BosTokenId);
        Assert.Equal(1, _tokenizer.EosTokenId);
        Assert.Equal([1], _tokenizer.StopTokenIds);
        Assert.Equal("mixtral", _tokenizer.ChatTemplate.Name);
        for (var id = 2; id < _tokenizer.VocabSize; id++)
            Assert.NotEqual("", _tokenizer.Decode([id]));
    }

    [Fact]
    public void AnyText_RoundTrips_AndEncodingAddsBos() =>
        Gen.String.Sample(text =>
        {
            var ids = _tokenizer.Encode(text, addSpecialTokens: true);
            Assert.Equal(0, ids[0]);
            Assert.All(ids, id => Assert.InRange(id, 0, _tokenizer.VocabSize - 1));
            Assert.Equal(WellFormed(text), _tokenizer.Decode(ids));
        }, iter: 300);

    [Fact]
    public void IncrementalDecoding_OfAnyText_NeverSplitsACharacter_AndAddsUpToTheWholeDecode() =>
        Gen.String.Sample(text =>
        {
            var ids = _tokenizer.Encode(text, addSpecialTokens: false);
            var decoder = _tokenizer.CreateIncrementalDecoder();
            var pieces = ids.Select(decoder.Append).Append(decoder.Flush()).ToList();
            Assert.All(pieces, piece => Assert.Equal(WellFormed(piece), piece));
            Assert.Equal(_tokenizer.Decode(ids), string.Concat(pieces));
            if (!text.Contains('\uFFFD', StringComparison.Ordinal))
                Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD', StringComparison.Ordinal));
        }, iter: 300);

    [Fact]
    public void LargeVocabulary_HasMergesThatShortenEnglish()
    {
        using var directory = new TempDirectory();
        GeneratedTokenizer.Write(directory.Path, ModelPresets.Medium);
        using var medium = TextTokenizer.Load(directory.Path);
        Assert.Equal(ModelPresets.Medium.VocabSize, medium.VocabSize);
        const string Text = "the experts are in the pool and the engine reads them";
        var ids = medium.Encode(Text, addSpecialTokens: false);
        Assert.True(ids.Length < Text.Length / 2, $"{ids.Length} tokens for {Text.Length} characters");
        Assert.Equal(Text, medium.Decode(ids));
    }

    [Fact]
    public void TemplatePostProcessor_IsStrippedWithoutSpecialTokens_AndTheConfigDecidesWithThem()
    {
        using var directory = new TempDirectory();
        GeneratedTokenizer.Write(directory.Path, ModelPresets.Tiny);
        var tokenizerJson = JsonNode.Parse(File.ReadAllText(directory.File(TextTokenizer.TokenizerFileName)))!.AsObject();
        tokenizerJson["post_processor"] = JsonNode.Parse("""
            { "type": "TemplateProcessing",
              "single": [ { "SpecialToken": { "id": "<s>", "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }, { "SpecialToken": { "id": "</s>", "type_id": 0 } } ],
              "pair": [ { "Sequence": { "id": "A", "type_id": 0 } }, { "Sequence": { "id": "B", "type_id": 1 } } ],
              "special_tokens": { "<s>": { "id": "<s>", "ids": [0], "tokens": ["<s>"] }, "</s>": { "id": "</s>", "ids": [1], "tokens": ["</s>"] } } }
            """);
        File.WriteAllText(directory.File(TextTokenizer.TokenizerFileName), tokenizerJson.ToJsonString());

        File.WriteAllText(directory.File(TextTokenizer.ConfigFileName), """{ "bos_token": "<s>", "eos_token": "</s>" }""");
        int[] plain;
        using (var byProcessor = TextTokenizer.Load(directory.Path))
        {
            plain = byProcessor.Encode("hi there", addSpecialTokens: false);
            Assert.DoesNotContain(0, plain);
            Assert.DoesNotContain(1, plain);
            Assert.Equal([0, .. plain, 1], byProcessor.Encode("hi there", addSpecialTokens: true));
            Assert.Equal([], byProcessor.Encode("", addSpecialTokens: false));
        }

        File.WriteAllText(directory.File(TextTokenizer.ConfigFileName), """{ "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true, "add_eos_token": false }""");
        using var byConfig = TextTokenizer.Load(directory.Path);
        Assert.Equal([0, .. plain], byConfig.Encode("hi there", addSpecialTokens: true));
    }

    [Fact]
    public void VocabularyTooSmallForTheBytes_IsRefused()
    {
        using var directory = new TempDirectory();
        var error = Assert.Throws<CheckpointException>(() => GeneratedTokenizer.Write(directory.Path, ModelPresets.Tiny with { VocabSize = 100 }));
        Assert.Contains("vocab_size", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ModelGenerator_WritesTheTokenizerBesideTheCheckpoint()
    {
        using var directory = new TempDirectory();
        ModelGenerator.Write(directory.Path, ModelPresets.Tiny, seed: 3);
        Assert.True(TextTokenizer.Exists(directory.Path));
        Assert.True(File.Exists(directory.File(TextTokenizer.ConfigFileName)));
    }

    public void Dispose()
    {
        _tokenizer.Dispose();
        _tiny.Dispose();
    }

    /// <summary>The text with each lone surrogate replaced by U+FFFD, as UTF-8 encoding does.</summary>
    private static string WellFormed(string text) => string.Concat(text.EnumerateRunes().Select(r => r.ToString()));
}
