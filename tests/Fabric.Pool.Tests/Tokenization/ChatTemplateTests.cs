using System.Text.Json.Nodes;
using Fabric.Model;
using Fabric.Model.Tokenization;

namespace Fabric.Pool.Tests.Tokenization;

/// <summary>The built-in chat formats, the JSON override file, and which one a checkpoint gets.</summary>
public sealed class ChatTemplateTests
{
    private static readonly ChatMessage[] Conversation =
    [
        new("system", "Be terse."),
        new("user", "hi"),
        new("assistant", "hello"),
        new("user", "more"),
    ];

    public static TheoryData<string, string, string, string> Renderings() => new()
    {
        { "chatml", "", "<|im_end|>", "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n" },
        { "mixtral", "<s>", "</s>", "<s>[INST] Be terse.\n\nhi [/INST]hello</s>[INST] more [/INST]" },
        { "deepseek", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜begin▁of▁sentence｜>Be terse.<｜User｜>hi<｜Assistant｜>hello<｜end▁of▁sentence｜><｜User｜>more<｜Assistant｜>" },
        { "olmoe", "<|endoftext|>", "<|endoftext|>", "<|endoftext|><|system|>\nBe terse.\n<|user|>\nhi\n<|assistant|>\nhello<|endoftext|>\n<|user|>\nmore\n<|assistant|>\n" },
    };

    [Theory]
    [MemberData(nameof(Renderings))]
    public void BuiltInFamily_RendersAConversationAsItsModelExpects(string family, string bos, string eos, string expected)
    {
        var template = ChatTemplates.Named(family)!;
        Assert.Equal(expected, template.Render(Conversation, addGenerationPrompt: true, bos, eos));
    }

    [Fact]
    public void MessageText_IsNeverTakenForAPlaceholder()
    {
        var rendered = ChatTemplates.Mixtral.Render([new("user", "say {bos} and {content}")], addGenerationPrompt: true, "<s>", "</s>");
        Assert.Equal("<s>[INST] say {bos} and {content} [/INST]", rendered);
    }

    [Fact]
    public void AnUnknownRole_IsOneSentenceNamingIt()
    {
        var error = Assert.Throws<ArgumentException>(() => ChatTemplates.ChatMl.Render([new("tool", "42")], true, "", ""));
        Assert.StartsWith("The chat template 'chatml' has no format for the role 'tool'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TemplateFile_IsReadAndRendered_AndABrokenOneIsRefused()
    {
        using var directory = new TempDirectory();
        var path = directory.File("template.json");
        File.WriteAllText(path, """{ "begin": "{bos}", "user": "U:{content}\n", "assistant": "A:{content}{eos}\n", "generation_prompt": "A:", "stop": ["\n"] }""");
        var template = ChatTemplate.Load(path);
        Assert.Equal("<s>U:Be terse.\n\nhi\nA:hello</s>\nU:more\nA:", template.Render(Conversation, addGenerationPrompt: true, "<s>", "</s>"));
        Assert.Equal(["\n"], template.StopTokens);

        File.WriteAllText(path, """{ "assistant": "A:{content}" }""");
        Assert.Equal($"{path}: a chat template file needs a \"user\" format.", Assert.Throws<CheckpointException>(() => ChatTemplate.Load(path)).Message);
        File.WriteAllText(path, """{ "user": 3, "assistant": "" }""");
        Assert.Contains("must be strings", Assert.Throws<CheckpointException>(() => ChatTemplate.Load(path)).Message, StringComparison.Ordinal);
        Assert.Equal($"The chat template file {directory.File("none.json")} does not exist.",
            Assert.Throws<CheckpointException>(() => ChatTemplate.Load(directory.File("none.json"))).Message);
    }

    [Fact]
    public void Checkpoint_GetsTheFamilyOfItsOwnTemplate_ElseOfItsModelType_UnlessOverridden()
    {
        using var directory = new TempDirectory();
        GeneratedTokenizer.Write(directory.Path, ModelPresets.Tiny);
        File.WriteAllText(directory.File("config.json"), """{ "model_type": "qwen2_moe" }""");
        using (var own = TextTokenizer.Load(directory.Path))
            Assert.Equal("mixtral", own.ChatTemplate.Name); // the tokenizer_config.json template's [INST] markers

        var config = JsonNode.Parse(File.ReadAllText(directory.File(TextTokenizer.ConfigFileName)))!.AsObject();
        config.Remove("chat_template");
        File.WriteAllText(directory.File(TextTokenizer.ConfigFileName), config.ToJsonString());
        using (var byType = TextTokenizer.Load(directory.Path))
            Assert.Equal("chatml", byType.ChatTemplate.Name);

        using (var named = TextTokenizer.Load(directory.Path, "olmoe"))
        {
            Assert.Equal("olmoe", named.ChatTemplate.Name);
            Assert.Equal("<s><|user|>\nhi\n<|assistant|>\n", named.ApplyChatTemplate([new("user", "hi")]));
        }
        Assert.Throws<CheckpointException>(() => TextTokenizer.Load(directory.Path, directory.File("missing.json")));
    }

    [Theory]
    [InlineData("mixtral", "mixtral")]
    [InlineData("qwen2_moe", "chatml")]
    [InlineData("qwen3_moe", "chatml")]
    [InlineData("deepseek_v3", "deepseek")]
    [InlineData("olmoe", "olmoe")]
    public void ModelType_ChoosesItsFamily(string modelType, string family) =>
        Assert.Equal(family, ChatTemplates.ForModelType(modelType)!.Name);
}
