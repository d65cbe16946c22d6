using System.CommandLine;
using Fabric.Cli;
using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Paging;
using Fabric.Engine.Runtime;
using Fabric.Engine.Server;
using Fabric.Model;
using Fabric.Model.Tokenization;

namespace Fabric.Engine.Cli;

/// <summary><c>serve</c>: an OpenAI-compatible HTTP server with continuous batching over the engine.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var weights = new WeightSourceOptions();
        var tokenizer = new Option<string?>("--tokenizer") { Description = "A directory holding tokenizer.json (default: --model's); without one, prompts are token ids." };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "A chat template JSON file, or a built-in one (chatml, mixtral, deepseek, olmoe), instead of the checkpoint's." };
        var listen = new Option<string>("--listen") { Description = "HTTP address to serve on (port 0 picks a free one).", DefaultValueFactory = _ => "http://127.0.0.1:8000" };
        var name = new Option<string?>("--served-model-name") { Description = "The model id clients send and /v1/models lists (default: the checkpoint directory's name)." };
        var policy = new Option<string>("--policy") { Description = "Eviction policy: lru, lfu, activation.", DefaultValueFactory = _ => "lru" };
        policy.AcceptOnlyFromAmong([.. EvictionPolicies.Names.Where(n => n != "belady")]);
        var prefetch = new Option<string>("--prefetch") { Description = "Prefetch: none, next-layer, history.", DefaultValueFactory = _ => "none" };
        prefetch.AcceptOnlyFromAmong(Prefetchers.Names);
        var slots = new Option<int>("--slots") { Description = "At most this many expert slots (0 = as many as the budget holds)." };
        var maxSeq = new Option<int>("--max-seq-len") { Description = "Positions one sequence may reach (prompt and completion); the KV cache holds this many per running sequence.", DefaultValueFactory = _ => 512 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Sequences decoding together (each holds a KV lane).", DefaultValueFactory = _ => 8 };
        var maxWaiting = new Option<int>("--max-waiting") { Description = "Requests queued beyond the running batch before 429.", DefaultValueFactory = _ => 64 };
        var chunk = new Option<int>("--prefill-chunk") { Description = "Token rows per engine step: decode rows first, prompt chunks in the rest.", DefaultValueFactory = _ => 64 };
        var drain = new Option<string>("--drain-timeout") { Description = "On SIGTERM, how long running requests may finish before they are cut (30s, 500ms, 2m).", DefaultValueFactory = _ => "30s" };

        var command = new Command("serve", "Serve the model over an OpenAI-compatible HTTP API with continuous batching, paging experts from a pool (or a local checkpoint).");
        foreach (var o in new Option[] { tokenizer, chatTemplate, listen, name, policy, prefetch, slots, maxSeq, maxBatch, maxWaiting, chunk, drain })
            command.Options.Add(o);
        foreach (var o in weights.All)
            command.Options.Add(o);

        command.SetAction((ParseResult r, CancellationToken _) => ConsoleErrors.RunAsync("fabric-engine", async () =>
        {
            var (endpoints, modelDirectory) = weights.Where(r);
            if (modelDirectory is null && endpoints.Length == 0)
                throw new FabricException("Say where the weights are: --model DIR (a local checkpoint) or --pool URI (one or more).");
            var budgetText = r.GetValue(weights.Memory);
            var budget = weights.Budget(r);
            var listenUri = ParseListen(r.GetValue(listen)!);
            if (r.GetValue(slots) < 0)
                throw new FabricException("--slots must be 0 (as many as the budget holds) or more.");
            if (r.GetValue(maxSeq) <= 0)
                throw new FabricException("--max-seq-len must be positive.");
            if (r.GetValue(maxBatch) <= 0)
                throw new FabricException("--max-batch must be positive.");
            if (r.GetValue(maxWaiting) < 0)
                throw new FabricException("--max-waiting must be 0 or more.");
            if (r.GetValue(chunk) < r.GetValue(maxBatch))
                throw new FabricException($"--prefill-chunk {r.GetValue(chunk)} must be at least --max-batch {r.GetValue(maxBatch)}: every running sequence decodes a row in each step.");
            var drainText = r.GetValue(drain)!;
            var drainTimeout = DurationText.TryParseNanoseconds(drainText, 1e9, out var ns) && ns > 0 && ns / 1e9 < TimeSpan.MaxValue.TotalSeconds / 2
                ? TimeSpan.FromSeconds(ns / 1e9)
                : throw new FabricException($"--drain-timeout '{drainText}' is not a positive duration; give one such as 30s, 500ms or 2m.");
            var tokenizerDirectory = r.GetValue(tokenizer) ?? modelDirectory;
            if (r.GetValue(tokenizer) is { } t && !TextTokenizer.Exists(t))
                throw new FabricException($"--tokenizer {t}: there is no {TextTokenizer.TokenizerFileName} in that directory.");
            if (modelDirectory is not null && !Directory.Exists(modelDirectory))
                throw new FabricException($"--model {modelDirectory}: the directory does not exist.");
            var settings = new LaunchSettings
            {
                ModelDirectory = modelDirectory,
                PoolEndpoints = endpoints,
                Token = r.GetValue(weights.Token),
                DeviceMemoryBytes = budget,
                Device = r.GetValue(weights.Device)!,
                Engine = new EngineOptions
                {
                    Policy = r.GetValue(policy)!,
                    Prefetch = r.GetValue(prefetch)!,
                    MaxSlots = r.GetValue(slots),
                    MaxSeqLen = r.GetValue(maxSeq),
                    MaxBatch = r.GetValue(maxBatch),
                    PrefillChunk = r.GetValue(chunk),
                },
            };
            var serve = new ServeSettings
            {
                Listen = listenUri,
                ModelName = r.GetValue(name) ?? (modelDirectory is not null ? Path.GetFileName(Path.GetFullPath(modelDirectory).TrimEnd('/')) : "fabric-moe"),
                MaxBatch = r.GetValue(maxBatch),
                MaxWaiting = r.GetValue(maxWaiting),
                DrainTimeout = drainTimeout,
            };
            var chatTemplateFile = r.GetValue(chatTemplate);
            return await EngineServer.RunAsync(serve, async ct =>
            {
                TextTokenizer? text = null;
                if (tokenizerDirectory is not null && TextTokenizer.Exists(tokenizerDirectory))
                {
                    try
                    {
                        text = TextTokenizer.Load(tokenizerDirectory, chatTemplateFile);
                    }
                    catch (CheckpointException e)
                    {
                        throw new FabricException(e.Message);
                    }
                }
                try
                {
                    return new LoadedModel(await EngineLauncher.CreateAsync(settings, ct), text);
                }
                catch (InsufficientDeviceMemoryException e) when (budgetText is not null)
                {
                    text?.Dispose();
                    throw new InsufficientDeviceMemoryException($"--device-memory {budgetText}: {e.Message}", e.RequiredBytes);
                }
                catch (KvCacheTooLargeException e)
                {
                    text?.Dispose();
                    throw new FabricException($"--max-seq-len {settings.Engine.MaxSeqLen} × --max-batch {settings.Engine.MaxBatch} need a KV cache larger than this machine's memory; at most {e.MaxPositions} positions fit.");
                }
                catch
                {
                    text?.Dispose();
                    throw;
                }
            }, Console.Out);
        }));
        return command;
    }

    private static Uri ParseListen(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.AbsolutePath != "/")
            throw new FabricException($"--listen '{text}' is not an HTTP address; expected http://HOST:PORT, such as http://127.0.0.1:8000.");
        return uri;
    }
}
