using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Fabric.Bench.Engine;
using Fabric.Engine.Device.Cpu;
using Fabric.Engine.Runtime;
using Fabric.Engine.Sources;
using Fabric.Model;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench engine --family F[,G…]`: all-resident decode tokens/s of each family's preset beside Mixtral's of
/// the same preset (measured in the same run, as a ratio), the weight bytes the engine reads per decode token against
/// the model's active-parameter bytes (dense weights, one embedding row, top-k routed experts per sparse layer), and
/// for DeepSeek-V2 the KV cache bytes per token with multi-head latent attention against full multi-head keys and values.
/// </summary>
internal static class FamilyEngineBenchmark
{
    private sealed record Row(string Family, int Layers, int SparseLayers, int Experts, int TopK, double TokensPerSecond, double Ratio,
        long BytesPerToken, long ActiveBytes, long KvBytesPerToken, long FullKvBytesPerToken);

    public static async Task<int> RunAsync(string[] families, string preset, int tokens, int promptTokens, string? json, CancellationToken cancellationToken)
    {
        var rows = new List<Row>();
        var order = families.Contains(Architectures.Mixtral) ? families : [Architectures.Mixtral, .. families];
        foreach (var family in order)
        {
            var model = ModelCache.Ensure(preset, 1, family: family);
            rows.Add(await MeasureAsync(family, model, tokens, promptTokens, cancellationToken));
            var baseline = rows[0].TokensPerSecond;
            rows[^1] = rows[^1] with { Ratio = rows[^1].TokensPerSecond / baseline };
            var r = rows[^1];
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {family}: {r.TokensPerSecond:0.00} tok/s, {r.BytesPerToken / 1e6:0.0} MB read per token"));
        }

        Console.WriteLine();
        Console.WriteLine($"all-resident decode on each family's {preset} preset (CPU, BF16, {tokens} tokens after a {promptTokens}-token prompt, greedy); ratio = tok/s ÷ Mixtral {preset} tok/s, same run");
        Console.WriteLine($"{"family",-12} {"layers",6} {"sparse",6} {"experts",7} {"top-k",5} {"tok/s",8} {"ratio",6} {"read/token",11} {"active",11} {"read/active",11} {"KV/token",10} {"full MHA KV",11} {"KV ratio",8}");
        foreach (var r in rows)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Family,-12} {r.Layers,6} {r.SparseLayers,6} {r.Experts,7} {r.TopK,5} {r.TokensPerSecond,8:0.00} {r.Ratio,6:0.00} {Mb(r.BytesPerToken),11} {Mb(r.ActiveBytes),11} {(double)r.BytesPerToken / r.ActiveBytes,11:0.000} {Kb(r.KvBytesPerToken),10} {Kb(r.FullKvBytesPerToken),11} {(double)r.KvBytesPerToken / r.FullKvBytesPerToken,8:0.000}"));
        }
        Console.WriteLine();
        Console.WriteLine("read/token: weight bytes the engine's ops read in one decode step (target: within 10% of active, nothing read twice); KV/token: fp32 cache bytes per position over all layers;");
        Console.WriteLine("full MHA KV: what keys and values of every head would take (DeepSeek-V2: heads × (qk_nope + qk_rope + v_head_dim) per layer, against kv_lora_rank + qk_rope_head_dim).");
        var lite = new ModelConfig
        {
            Architecture = Architectures.DeepseekV2, NumHiddenLayers = 27, NumAttentionHeads = 16, KvLoraRank = 512, QkNopeHeadDim = 128, QkRopeHeadDim = 64, VHeadDim = 128,
        };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"DeepSeek-V2-Lite's config (27 layers, 16 heads, kv_lora_rank 512, rope 64, nope 128, v 128): MLA {Kb(KvBytes(lite))} vs full MHA {Kb(FullKvBytes(lite))} per token = {(double)KvBytes(lite) / FullKvBytes(lite):0.000}"));
        if (json is not null)
            await File.WriteAllTextAsync(json, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        return 0;
    }

    private static async Task<Row> MeasureAsync(string family, string model, int tokens, int promptTokens, CancellationToken cancellationToken)
    {
        var source = new CheckpointSource(model);
        var c = source.Config;
        var options = new EngineOptions { MaxSeqLen = Math.Max(64, promptTokens + tokens + 8) };
        var budget = MemoryPlan.BytesForSlots(c, DenseWeights.DeviceBytes(source), source.ExpertLayout, options, c.TotalExperts);
        var device = new WeightReadCounter(new CpuDevice(budget));
        await using var engine = await MoeEngine.CreateAsync(device, source, options, cancellationToken);
        var prompt = EngineRun.Prompt(promptTokens, c.VocabSize);
        var logits = await engine.ForwardAsync(prompt, 0, 0, 0, cancellationToken);
        var next = Sampler.ArgMax(logits);
        device.Reset();
        var watch = Stopwatch.StartNew();
        for (var step = 1; step <= tokens; step++)
        {
            logits = await engine.ForwardAsync(new[] { next }, promptTokens + step - 1, 0, step, cancellationToken);
            next = Sampler.ArgMax(logits);
        }
        var seconds = watch.Elapsed.TotalSeconds;
        return new Row(family, c.NumHiddenLayers, c.ExpertLayers, c.NumLocalExperts, c.NumExpertsPerTok, tokens / seconds, 1, device.BytesRead / tokens, ActiveBytes(source),
            KvBytes(c), FullKvBytes(c));
    }

    /// <summary>Weight bytes one decode token needs: every dense tensor but the embedding table (one row of it), and top-k routed experts per sparse layer.</summary>
    private static long ActiveBytes(CheckpointSource source)
    {
        var c = source.Config;
        var embedding = source.DenseTensors["model.embed_tokens.weight"];
        var dense = source.DenseTensors.Values.Sum(t => t.Bytes) - embedding.Bytes + (embedding.Bytes / c.VocabSize);
        return dense + ((long)c.ExpertLayers * c.NumExpertsPerTok * c.ExpertBytes);
    }

    private static long KvBytes(ModelConfig c) => (long)c.NumHiddenLayers * c.KvFloatsPerLayerPosition * sizeof(float);

    private static long FullKvBytes(ModelConfig c) => c.UsesLatentAttention
        ? (long)c.NumHiddenLayers * c.NumAttentionHeads * (c.QkNopeHeadDim + c.QkRopeHeadDim + c.VHeadDim) * sizeof(float)
        : KvBytes(c);

    private static string Mb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:0.00} MB");

    private static string Kb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB");
}
