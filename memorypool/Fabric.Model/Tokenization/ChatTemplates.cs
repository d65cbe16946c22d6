namespace Fabric.Model.Tokenization;

/// <summary>
/// The built-in chat formats of the model families Fabric runs, and the choice among them for a checkpoint: the
/// family whose markers the checkpoint's own Jinja template uses, else the family of config.json's
/// <c>model_type</c>, else ChatML.
/// </summary>
public static class ChatTemplates
{
    /// <summary>ChatML, as Qwen (Qwen2-MoE, Qwen3) uses it.</summary>
    public static ChatTemplate ChatMl { get; } = new()
    {
        Name = "chatml",
        System = "<|im_start|>system\n{content}<|im_end|>\n",
        User = "<|im_start|>user\n{content}<|im_end|>\n",
        Assistant = "<|im_start|>assistant\n{content}<|im_end|>\n",
        GenerationPrompt = "<|im_start|>assistant\n",
        StopTokens = ["<|im_end|>", "<|endoftext|>"],
    };

    /// <summary>Mixtral-Instruct's [INST] format; a system message goes in front of the first user message.</summary>
    public static ChatTemplate Mixtral { get; } = new()
    {
        Name = "mixtral",
        Begin = "{bos}",
        User = "[INST] {content} [/INST]",
        Assistant = "{content}{eos}",
        StopTokens = ["</s>"],
    };

    /// <summary>DeepSeek-V2/V3's format with its full-width markers.</summary>
    public static ChatTemplate DeepSeek { get; } = new()
    {
        Name = "deepseek",
        Begin = "{bos}",
        System = "{content}",
        User = "<｜User｜>{content}",
        Assistant = "<｜Assistant｜>{content}<｜end▁of▁sentence｜>",
        GenerationPrompt = "<｜Assistant｜>",
        StopTokens = ["<｜end▁of▁sentence｜>"],
    };

    /// <summary>OLMoE-Instruct's Tülu format.</summary>
    public static ChatTemplate Olmoe { get; } = new()
    {
        Name = "olmoe",
        Begin = "{bos}",
        System = "<|system|>\n{content}\n",
        User = "<|user|>\n{content}\n",
        Assistant = "<|assistant|>\n{content}{eos}\n",
        GenerationPrompt = "<|assistant|>\n",
        StopTokens = ["<|endoftext|>"],
    };

    /// <summary>Every built-in template.</summary>
    public static IReadOnlyList<ChatTemplate> All { get; } = [ChatMl, Mixtral, DeepSeek, Olmoe];

    /// <summary>The built-in template called <paramref name="name"/>, or null.</summary>
    public static ChatTemplate? Named(string name) => All.FirstOrDefault(t => t.Name == name);

    /// <summary>The family of a Hugging Face <c>model_type</c>, or null for one Fabric has no format for.</summary>
    public static ChatTemplate? ForModelType(string? modelType) => modelType switch
    {
        "mixtral" or "mistral" => Mixtral,
        "qwen2_moe" or "qwen3_moe" or "qwen2" or "qwen3" => ChatMl,
        "deepseek_v2" or "deepseek_v3" => DeepSeek,
        "olmoe" => Olmoe,
        _ => null,
    };

    /// <summary>The family whose markers a checkpoint's Jinja template uses, or null.</summary>
    public static ChatTemplate? ForJinjaTemplate(string? jinja)
    {
        if (string.IsNullOrEmpty(jinja))
            return null;
        if (jinja.Contains("<|im_start|>", StringComparison.Ordinal))
            return ChatMl;
        if (jinja.Contains("<｜User｜>", StringComparison.Ordinal))
            return DeepSeek;
        if (jinja.Contains("[INST]", StringComparison.Ordinal))
            return Mixtral;
        if (jinja.Contains("<|user|>", StringComparison.Ordinal))
            return Olmoe;
        return null;
    }
}
