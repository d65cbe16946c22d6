using System.Globalization;
using Fabric.Model.Tokenization;

namespace Fabric.EndToEnd.Tests;

/// <summary>fabric-engine generate --prompt TEXT as a child process on a generated tiny model: text in, text out.</summary>
public sealed class GenerateTextTests : IClassFixture<PoolModel>
{
    private const string Prompt = "Experts live in a CXL memory pool; 日本語 🚀";
    private readonly PoolModel _model;

    public GenerateTextTests(PoolModel model) => _model = model;

    private static Task<(int Code, string Stdout, string Stderr)> EngineAsync(string arguments) =>
        ChildProgram.RunAsync("fabric-engine", arguments);

    [Fact]
    public async Task Generate_WithPromptText_PrintsTheTextOfTheTokensThePromptIdsGive()
    {
        using var tokenizer = TextTokenizer.Load(_model.ModelDirectory);
        var promptIds = tokenizer.Encode(Prompt, addSpecialTokens: true);
        var ids = await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt-ids {string.Join(',', promptIds)} --max-new-tokens 16");
        Assert.True(ids.Code == 0, ids.Stderr);
        var generated = ids.Stdout.Split('\n')[0].Trim().Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(16, generated.Length);

        var text = await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt \"{Prompt}\" --max-new-tokens 16");

        Assert.True(text.Code == 0, text.Stderr);
        Assert.StartsWith(tokenizer.Decode(generated) + "\n", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("hit rate", text.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generate_FromAPoolWithPromptText_TakesTheTokenizerFromTokenizerDir()
    {
        var local = await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt \"{Prompt}\" --max-new-tokens 8");
        Assert.True(local.Code == 0, local.Stderr);
        await using var pool = await PoolProcess.StartAsync($"serve --model \"{_model.ModelDirectory}\" --listen tcp://127.0.0.1:0 --tokens \"{_model.TokensFile}\"", endpoints: 1);

        var paged = await EngineAsync($"generate --pool {pool.Endpoint("tcp")} --token alice:wonderland --tokenizer \"{_model.ModelDirectory}\" --prompt \"{Prompt}\" --max-new-tokens 8 --slots 4");
        Assert.True(paged.Code == 0, paged.Stderr);
        Assert.Equal(TextBeforeSummary(local.Stdout), TextBeforeSummary(paged.Stdout));

        var untokenized = await EngineAsync($"generate --pool {pool.Endpoint("tcp")} --token alice:wonderland --prompt \"{Prompt}\"");
        ChildProgram.AssertRefused(untokenized,
            "fabric-engine: --prompt TEXT needs a tokenizer: give --tokenizer DIR (a directory with the checkpoint's tokenizer.json), or use --prompt-ids.");
    }

    [Fact]
    public async Task Generate_WithChat_RendersTheChatTemplate_AndRefusesAMissingTemplateFileOrTwoPrompts()
    {
        var chat = await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt \"What is CXL?\" --chat --max-new-tokens 4");
        Assert.True(chat.Code == 0, chat.Stderr);

        var missing = Path.Combine(_model.Directory, "no-such-template.json");
        ChildProgram.AssertRefused(await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt hi --chat --chat-template \"{missing}\""),
            $"fabric-engine: The chat template file {missing} does not exist.");
        ChildProgram.AssertRefused(await EngineAsync($"generate --model \"{_model.ModelDirectory}\" --prompt hi --prompt-ids 1,2"),
            "fabric-engine: Give the prompt with exactly one of --prompt TEXT, --prompt-ids 1,2,3 or --prompt-file PATH.");
    }

    /// <summary>The generated text: everything before the summary block that ends the output.</summary>
    private static string TextBeforeSummary(string stdout)
    {
        var summary = stdout.LastIndexOf("\ngenerated ", StringComparison.Ordinal);
        return summary < 0 ? stdout : stdout[..summary];
    }
}
