namespace Fabric.Pool.Tests.Tokenization;

/// <summary>Streaming decode of real Qwen3 / DeepSeek-V3 token streams whose tokens split CJK and emoji characters.</summary>
public sealed class IncrementalDecoderTests(ReferenceTokenizers tokenizers) : IClassFixture<ReferenceTokenizers>
{
    public static TheoryData<string, string> Streams() => new()
    {
        { ReferenceTokenizers.Qwen3, "emoji: 🚀🧠👍🏽" },
        { ReferenceTokenizers.Qwen3, "日本語のテキストと中文文本" },
        { ReferenceTokenizers.Qwen3, "naïve café — déjà vu, 🚀 then 中文" },
        { ReferenceTokenizers.DeepSeekV3, "emoji: 🚀🧠👍🏽" },
        { ReferenceTokenizers.DeepSeekV3, "日本語のテキストと中文文本" },
        { ReferenceTokenizers.DeepSeekV3, "<｜User｜>你好 👋<｜Assistant｜>" },
    };

    [Theory]
    [MemberData(nameof(Streams))]
    public void Pieces_AreWholeCharacters_AndConcatenateToTheFullDecode(string model, string text)
    {
        var tokenizer = tokenizers[model];
        var ids = tokenizer.Encode(text, addSpecialTokens: false);
        foreach (var skip in new[] { true, false })
        {
            var decoder = tokenizer.CreateIncrementalDecoder(skip);
            var pieces = ids.Select(decoder.Append).Append(decoder.Flush()).ToList();
            Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD', StringComparison.Ordinal));
            Assert.All(pieces, p => Assert.False(p.Length > 0 && char.IsHighSurrogate(p[^1]), $"piece '{p}' ends inside a surrogate pair"));
            Assert.Equal(tokenizer.Decode(ids, skip), string.Concat(pieces));
        }
    }

    [Fact]
    public void ATokenThatEndsInsideACharacter_EmitsNothingUntilTheCharacterCompletes()
    {
        // Qwen3 splits 🚀 into three byte-level tokens.
        var qwen = tokenizers[ReferenceTokenizers.Qwen3];
        var decoder = qwen.CreateIncrementalDecoder();
        Assert.Equal("emoji", decoder.Append(37523));
        Assert.Equal(":", decoder.Append(25));
        Assert.Equal("", decoder.Append(11162));
        Assert.Equal("", decoder.Append(248));
        Assert.Equal(" 🚀", decoder.Append(222));
    }

    [Fact]
    public void Flush_OfAnIncompleteCharacter_GivesTheReplacementCharacter()
    {
        var qwen = tokenizers[ReferenceTokenizers.Qwen3];
        var decoder = qwen.CreateIncrementalDecoder();
        Assert.Equal("", decoder.Append(11162));
        Assert.Equal(qwen.Decode([11162]), decoder.Flush());
        Assert.EndsWith("\uFFFD", qwen.Decode([11162]), StringComparison.Ordinal);
    }
}
