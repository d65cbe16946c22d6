using System.CommandLine;
using System.Globalization;
using System.Text;
using Fabric.Cli;
using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Paging;
using Fabric.Engine.Runtime;
using Fabric.Model.Tokenization;

namespace Fabric.Engine.Cli;

/// <summary>
/// <c>generate</c>: runs a prompt through the engine, streaming the generated text (for <c>--prompt TEXT</c>) or token ids
/// (for <c>--prompt-ids</c> / <c>--prompt-file</c>), then prints the summary.
/// </summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var weights = new WeightSourceOptions();
        var discover = new Option<string?>("--discover") { Description = "Find the pools in etcd: etcd://HOST:PORT/MODEL (instead of --pool)." };
        var promptText = new Option<string?>("--prompt") { Description = "Prompt text, encoded with the checkpoint's tokenizer (tokenizer.json of --tokenizer DIR, else of --model DIR); prints the generated text." };
        var tokenizerDirectory = new Option<string?>("--tokenizer") { Description = "Directory holding the tokenizer.json (and tokenizer_config.json) for --prompt; default: the --model directory." };
        var chat = new Option<bool>("--chat") { Description = "Send --prompt as a user message through the model's chat template." };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "With --chat: a chat template JSON file, or a built-in one (chatml, mixtral, deepseek, olmoe), instead of the checkpoint's." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt token ids, comma-separated: 1,2,3." };
        var promptFile = new Option<string?>("--prompt-file") { Description = "A file of prompt token ids (separated by commas or whitespace)." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 32 };
        var policy = new Option<string>("--policy") { Description = "Eviction policy: lru, lfu, activation (Fabric's), belady (needs --belady-trace).", DefaultValueFactory = _ => "lru" };
        policy.AcceptOnlyFromAmong(EvictionPolicies.Names);
        var prefetch = new Option<string>("--prefetch") { Description = "Prefetch: none, next-layer, history.", DefaultValueFactory = _ => "none" };
        prefetch.AcceptOnlyFromAmong(Prefetchers.Names);
        var slots = new Option<int>("--slots") { Description = "At most this many expert slots (0 = as many as the budget holds)." };
        var maxSeq = new Option<int>("--max-seq-len") { Description = "Positions the KV cache holds per sequence.", DefaultValueFactory = _ => 512 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Sequences the KV cache holds.", DefaultValueFactory = _ => 1 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy; otherwise sample with this temperature.", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold.", DefaultValueFactory = _ => 1 };
        var seed = new Option<int>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 0 };
        var statsJson = new Option<string?>("--stats-json") { Description = "Write the summary as JSON to this path." };
        var traceOut = new Option<string?>("--trace-out") { Description = "Write the routing trace (JSONL) to this path (fabric-sim replays it; --belady-trace reads it)." };
        var beladyTrace = new Option<string?>("--belady-trace") { Description = "A trace of this same run (recorded with --trace-out) that gives belady its future." };

        var command = new Command("generate", "Generate tokens with bounded expert residency, paging experts from a pool (or a local checkpoint).");
        foreach (var o in new Option[] { discover, promptText, tokenizerDirectory, chat, chatTemplate, promptIds, promptFile, maxNew, policy, prefetch, slots, maxSeq, maxBatch, temperature, topP, seed, statsJson, traceOut, beladyTrace })
            command.Options.Add(o);
        foreach (var o in weights.All)
            command.Options.Add(o);

        command.SetAction((ParseResult r, CancellationToken ct) => ConsoleErrors.RunAsync("fabric-engine", async () =>
        {
            var (endpoints, modelDirectory) = weights.Where(r);
            if (r.GetValue(discover) is { } discoverText && (modelDirectory is not null || endpoints.Length > 0))
                throw new FabricException($"--discover {discoverText} finds the pools itself; leave out --model and --pool.");
            var text = r.GetValue(promptText);
            if (text is not null && (r.GetValue(promptIds) is not null || r.GetValue(promptFile) is not null))
                throw new FabricException("Give the prompt with exactly one of --prompt TEXT, --prompt-ids 1,2,3 or --prompt-file PATH.");
            if (text is null && (r.GetValue(chat) || r.GetValue(chatTemplate) is not null || r.GetValue(tokenizerDirectory) is not null))
                throw new FabricException("--tokenizer, --chat and --chat-template go with --prompt TEXT.");
            if (r.GetValue(chatTemplate) is not null && !r.GetValue(chat))
                throw new FabricException("--chat-template goes with --chat.");
            using var tokenizer = text is null ? null : LoadTokenizer(r.GetValue(tokenizerDirectory) ?? modelDirectory, r.GetValue(chatTemplate));
            var prompt = tokenizer is null
                ? ReadPrompt(r.GetValue(promptIds), r.GetValue(promptFile))
                : r.GetValue(chat) ? tokenizer.EncodeChat([new ChatMessage("user", text!)]) : tokenizer.Encode(text!, addSpecialTokens: true);
            if (prompt.Length == 0)
                throw new FabricException("--prompt encodes to no tokens; give some text.");
            var budgetText = r.GetValue(weights.Memory);
            var budget = weights.Budget(r);
            var settings = new LaunchSettings
            {
                ModelDirectory = modelDirectory,
                PoolEndpoints = endpoints,
                Discover = r.GetValue(discover),
                Token = r.GetValue(weights.Token),
                DeviceMemoryBytes = budget,
                Device = r.GetValue(weights.Device)!,
                BeladyTrace = r.GetValue(beladyTrace),
                Engine = new EngineOptions
                {
                    Policy = r.GetValue(policy)!,
                    Prefetch = r.GetValue(prefetch)!,
                    MaxSlots = r.GetValue(slots),
                    MaxSeqLen = r.GetValue(maxSeq),
                    MaxBatch = r.GetValue(maxBatch),
                },
            };
            var newTokens = r.GetValue(maxNew);
            if (newTokens <= 0)
                throw new FabricException("--max-new-tokens must be at least 1.");
            if (r.GetValue(slots) < 0)
                throw new FabricException("--slots must be 0 (as many as the budget holds) or more.");
            if (!(r.GetValue(temperature) >= 0) || float.IsInfinity(r.GetValue(temperature)))
                throw new FabricException("--temperature must be 0 (greedy) or a positive number.");
            if (!(r.GetValue(topP) is > 0 and <= 1))
                throw new FabricException("--top-p must lie above 0 and at most 1.");
            if (settings.Engine.MaxSeqLen <= 0 || settings.Engine.MaxBatch <= 0)
                throw new FabricException("--max-seq-len and --max-batch must be positive.");
            // The last new token is printed but never run through the model.
            var positions = (long)prompt.Length + newTokens - 1;
            if (positions > settings.Engine.MaxSeqLen)
                throw new FabricException($"The prompt ({prompt.Length} tokens) and --max-new-tokens {newTokens} need {positions} positions, more than --max-seq-len {settings.Engine.MaxSeqLen}.");
            await using var engine = await LaunchAsync(settings, budgetText, ct);
            using var trace = r.GetValue(traceOut) is { } tracePath ? new RoutingTraceWriter(tracePath) : null;
            if (trace is not null)
            {
                trace.WriteHeader(engine.Config, prompt.Length, settings.Engine.Policy, settings.Engine.Prefetch, engine.Plan.Slots, engine.Source.TransportName);
                engine.Trace = trace;
            }
            var sampler = new Sampler(r.GetValue(temperature), r.GetValue(topP), r.GetValue(seed));
            var first = true;
            var decoder = tokenizer?.CreateIncrementalDecoder();
            GenerationResult result;
            try
            {
                result = await Generator.GenerateAsync(engine, prompt, newTokens, sampler, t =>
                {
                    if (decoder is not null)
                        Console.Write(decoder.Append(t));
                    else
                        Console.Write(first ? t.ToString(CultureInfo.InvariantCulture) : "," + t.ToString(CultureInfo.InvariantCulture));
                    Console.Out.Flush();
                    first = false;
                }, cancellationToken: ct);
            }
            finally
            {
                if (decoder is not null)
                    Console.Write(decoder.Flush());
                // The token line ends before any error, so that the error starts a line of its own.
                if (!first)
                {
                    Console.WriteLine();
                    Console.Out.Flush();
                }
            }
            var summary = GenerationSummary.From(engine, result);
            Console.WriteLine(summary.ToText());
            if (r.GetValue(statsJson) is { } jsonPath)
                summary.WriteJson(jsonPath);
            return 0;
        }));
        return command;
    }

    /// <summary>Starts the engine; what a person must change is said with the option that changes it.</summary>
    private static async Task<MoeEngine> LaunchAsync(LaunchSettings settings, string? budgetText, CancellationToken cancellationToken)
    {
        if (settings.ModelDirectory is null && settings.PoolEndpoints.Count == 0 && settings.Discover is null)
            throw new FabricException("Say where the weights are: --model DIR (a local checkpoint), --pool URI (one or more) or --discover etcd://HOST:PORT/MODEL.");
        if (settings.Engine.Policy == "belady")
        {
            if (settings.BeladyTrace is null)
                throw new FabricException("--policy belady needs the future: record a trace of the same run with --trace-out PATH, then replay it with --belady-trace PATH.");
            if (!File.Exists(settings.BeladyTrace))
                throw new FabricException($"The routing trace {settings.BeladyTrace} does not exist; record one first with --trace-out.");
        }
        try
        {
            return await EngineLauncher.CreateAsync(settings, cancellationToken);
        }
        catch (InsufficientDeviceMemoryException e) when (budgetText is not null)
        {
            throw new InsufficientDeviceMemoryException($"--device-memory {budgetText}: {e.Message}", e.RequiredBytes);
        }
        catch (KvCacheTooLargeException e)
        {
            throw new FabricException(
                $"--max-seq-len {settings.Engine.MaxSeqLen} × --max-batch {settings.Engine.MaxBatch} = {e.Positions} positions need a KV cache of " +
                $"{ByteSize.Format((double)e.Positions * e.BytesPerPosition)} ({e.BytesPerPosition} bytes each), more than the {ByteSize.Format(e.LimitBytes)} " +
                $"of memory this machine has; at most {e.MaxPositions} positions fit.");
        }
    }

    /// <summary>The tokenizer for --prompt; where there is none, one sentence says what to give.</summary>
    private static TextTokenizer LoadTokenizer(string? directory, string? chatTemplate)
    {
        if (directory is null)
            throw new FabricException("--prompt TEXT needs a tokenizer: give --tokenizer DIR (a directory with the checkpoint's tokenizer.json), or use --prompt-ids.");
        if (!TextTokenizer.Exists(directory))
            throw new FabricException($"--prompt TEXT needs a tokenizer, and {directory} has no tokenizer.json: give --tokenizer DIR, or use --prompt-ids.");
        return TextTokenizer.Load(directory, chatTemplate);
    }

    private static int[] ReadPrompt(string? ids, string? file)
    {
        if ((ids is null) == (file is null))
            throw new FabricException("Give the prompt with exactly one of --prompt TEXT, --prompt-ids 1,2,3 or --prompt-file PATH.");
        string text;
        string where;
        if (file is not null)
        {
            if (!File.Exists(file))
                throw new FabricException($"The prompt file {file} does not exist.");
            try
            {
                text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(file));
            }
            catch (DecoderFallbackException)
            {
                throw new FabricException($"{file} is not a list of token ids: it is not UTF-8 text.");
            }
            if (text.Any(c => char.IsControl(c) && c is not ('\n' or '\r' or '\t')))
                throw new FabricException($"{file} is not a list of token ids: it holds control characters, so it is not text.");
            where = file;
        }
        else
        {
            text = ids!;
            where = "--prompt-ids";
        }
        var prompt = new List<int>();
        var lines = text.Split('\n');
        for (var line = 0; line < lines.Length; line++)
        {
            foreach (var part in lines[line].Split([',', ' ', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var id) || id < 0)
                {
                    var at = lines.Length > 1 ? $"{where} line {line + 1}" : where;
                    throw new FabricException($"{at}: '{Excerpt(part)}' is not a token id (a non-negative integer).");
                }
                prompt.Add(id);
            }
        }
        if (prompt.Count == 0)
            throw new FabricException($"{where} holds no token ids.");
        return [.. prompt];
    }

    /// <summary>At most 20 characters of <paramref name="text"/>, each unprintable one shown as '?'.</summary>
    private static string Excerpt(string text)
    {
        const int Longest = 20;
        var shown = new StringBuilder();
        foreach (var rune in text.EnumerateRunes())
        {
            if (shown.Length >= Longest)
                return shown.Append('…').ToString();
            if (Rune.IsControl(rune) || Rune.GetUnicodeCategory(rune) is UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned)
                shown.Append('?');
            else
                shown.Append(rune.ToString());
        }
        return shown.ToString();
    }
}
