using Fabric.Model;
using Fabric.Model.Tokenization;

namespace Fabric.Pool.Tests.Tokenization;

/// <summary>Real Qwen3 and DeepSeek-V3 tokenizer.json files through <see cref="TextTokenizer"/>.</summary>
public sealed class HuggingFaceTokenizerTests(ReferenceTokenizers tokenizers) : IClassFixture<ReferenceTokenizers>
{
    [Theory]
    [MemberData(nameof(ReferenceTokenizers.ExpectedEncodings), MemberType = typeof(ReferenceTokenizers))]
    public void Encode_WithoutSpecialTokens_GivesTheExpectedIds(string model, string text, int[] ids) =>
        Assert.Equal(ids, tokenizers[model].Encode(text, addSpecialTokens: false));

    [Theory]
    [MemberData(nameof(ReferenceTokenizers.ExpectedEncodings), MemberType = typeof(ReferenceTokenizers))]
    public void Decode_OfTheEncoding_GivesTheTextBack(string model, string text, int[] ids)
    {
        var tokenizer = tokenizers[model];
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text, addSpecialTokens: false), skipSpecialTokens: false));
        Assert.Equal(text, tokenizer.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void SpecialTokens_InText_EncodeToTheirIds_AndDecodeSkipsThemOnRequest()
    {
        var qwen = tokenizers[ReferenceTokenizers.Qwen3];
        int[] ids = [151644, 872, 198, 6023, 151645];
        Assert.Equal(ids, qwen.Encode("<|im_start|>user\nhi<|im_end|>", addSpecialTokens: false));
        Assert.Equal("user\nhi", qwen.Decode(ids));
        Assert.Equal("<|im_start|>user\nhi<|im_end|>", qwen.Decode(ids, skipSpecialTokens: false));
        Assert.Equal("<|im_end|>", qwen.SpecialTokens[151645]);
    }

    [Fact]
    public void Encode_WithSpecialTokens_AddsBosWhereTheConfigSaysSo()
    {
        var deepSeek = tokenizers[ReferenceTokenizers.DeepSeekV3];
        Assert.Equal(0, deepSeek.BosTokenId);
        Assert.Equal(1, deepSeek.EosTokenId);
        Assert.Equal([0, 19923, 14, 2058, 3], deepSeek.Encode("Hello, world!", addSpecialTokens: true));
        Assert.Equal([0], deepSeek.Encode("", addSpecialTokens: true));

        var qwen = tokenizers[ReferenceTokenizers.Qwen3];
        Assert.Null(qwen.BosTokenId);
        Assert.Equal([9707, 11, 1879, 0], qwen.Encode("Hello, world!", addSpecialTokens: true));
    }

    [Fact]
    public void VocabSizeAndStopTokens_ComeFromTheFiles()
    {
        var qwen = tokenizers[ReferenceTokenizers.Qwen3];
        Assert.Equal(151643 + 26, qwen.VocabSize);
        Assert.Equal(151645, qwen.EosTokenId);
        Assert.Equal([151643, 151645], qwen.StopTokenIds.Order());

        var deepSeek = tokenizers[ReferenceTokenizers.DeepSeekV3];
        Assert.Equal(128000 + 815, deepSeek.VocabSize);
        Assert.Equal([1], deepSeek.StopTokenIds);
    }

    [Fact]
    public void Decode_OfAnUnknownId_GivesNothing_AndANegativeIdThrows()
    {
        var qwen = tokenizers[ReferenceTokenizers.Qwen3];
        Assert.Equal("Hello", qwen.Decode([9707, 999_999]));
        Assert.Throws<ArgumentOutOfRangeException>(() => qwen.Decode([-1]));
    }

    [Fact]
    public void DeepSeekChatTemplate_RendersAsTheCheckpointsJinjaTemplateDoes()
    {
        var (messages, prompt) = ReferenceTokenizers.ExpectedChat(ReferenceTokenizers.DeepSeekV3);
        var deepSeek = tokenizers[ReferenceTokenizers.DeepSeekV3];
        Assert.Equal("deepseek", deepSeek.ChatTemplate.Name);
        Assert.Equal(prompt, deepSeek.ApplyChatTemplate(messages));
        Assert.Equal(deepSeek.Encode(prompt!, addSpecialTokens: false), deepSeek.EncodeChat(messages));
        Assert.Equal(0, deepSeek.EncodeChat(messages)[0]);
    }

    [Fact]
    public void Qwen3ChatTemplate_RendersChatMl()
    {
        // expected.json has no rendering for Qwen3 (its producer's Jinja engine could not parse the template); this is
        // what Qwen3's template renders for a system + user message without tools, with the generation prompt.
        var (messages, _) = ReferenceTokenizers.ExpectedChat(ReferenceTokenizers.Qwen3);
        var qwen = tokenizers[ReferenceTokenizers.Qwen3];
        Assert.Equal("chatml", qwen.ChatTemplate.Name);
        Assert.Equal("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is CXL?<|im_end|>\n<|im_start|>assistant\n",
            qwen.ApplyChatTemplate(messages));
        Assert.Equal(151644, qwen.EncodeChat(messages)[0]);
    }

    [Fact]
    public void Load_OfADirectoryWithoutTokenizer_ThrowsNamingTheFile()
    {
        using var empty = new TempDirectory();
        Assert.False(TextTokenizer.Exists(empty.Path));
        var error = Assert.Throws<CheckpointException>(() => TextTokenizer.Load(empty.Path));
        Assert.Contains(Path.Combine(empty.Path, "tokenizer.json"), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_OfABrokenTokenizer_ThrowsNamingTheFile()
    {
        using var directory = new TempDirectory();
        File.WriteAllText(directory.File("tokenizer.json"), "{\"model\": {\"type\": \"NoSuchModel\"}}");
        var error = Assert.Throws<CheckpointException>(() => TextTokenizer.Load(directory.Path));
        Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);

        File.WriteAllText(directory.File("tokenizer.json"), "{ not json");
        Assert.Contains("not valid JSON", Assert.Throws<CheckpointException>(() => TextTokenizer.Load(directory.Path)).Message, StringComparison.Ordinal);
    }
}
