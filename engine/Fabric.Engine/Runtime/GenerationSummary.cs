using System.Globalization;
using System.Text;
using System.Text.Json;
using Fabric.Common;

namespace Fabric.Engine.Runtime;

/// <summary>The figures a person wants after a generation, as text and as JSON (<c>--stats-json</c>).</summary>
public sealed record GenerationSummary
{
    public required int PromptTokens { get; init; }
    public required int GeneratedTokens { get; init; }
    public required string Device { get; init; }
    public required string Policy { get; init; }
    public required string Prefetch { get; init; }
    public required string Source { get; init; }
    public required int Slots { get; init; }
    public required int TotalExperts { get; init; }
    public required double TimeToFirstTokenMs { get; init; }
    public required double DecodeTokensPerSecond { get; init; }
    public required double TotalSeconds { get; init; }
    public required long Hits { get; init; }
    public required long Misses { get; init; }
    public required double HitRate { get; init; }
    public required double[] LayerHitRates { get; init; }
    public required long Evictions { get; init; }
    public required long BytesFetched { get; init; }
    public required long Fetches { get; init; }
    public required double StallMs { get; init; }
    public required double ComputeMs { get; init; }
    public required long PrefetchesIssued { get; init; }
    public required long PrefetchesUsed { get; init; }
    public required double PrefetchPrecision { get; init; }
    public required long DenseBytes { get; init; }
    public required long KvCacheBytes { get; init; }
    public required long SlotBytes { get; init; }
    public required long DeviceBudgetBytes { get; init; }
    public required long FetchRetries { get; init; }

    /// <summary>Mean time of one fetch (pool read + verify into the slot), from its start on a pool thread.</summary>
    public required double MeanFetchMs { get; init; }

    /// <summary>Mean time a fetch waited between being issued and starting (thread pool, staging buffers).</summary>
    public required double MeanFetchQueuedMs { get; init; }
    public required long CorruptBlocks { get; init; }
    public required int[] Tokens { get; init; }

    /// <summary>Every fetch after start-up, in the order they finished (step, issue time, queued and fetch ns).</summary>
    public required FetchTiming[] FetchLog { get; init; }

    public static GenerationSummary From(MoeEngine engine, GenerationResult result)
    {
        var stats = engine.Pager.Stats;
        return new GenerationSummary
        {
            PromptTokens = result.PromptTokens,
            GeneratedTokens = result.Tokens.Length,
            Device = engine.Device.Name,
            Policy = engine.Pager.Policy.Name,
            Prefetch = engine.Pager.Prefetcher.Name,
            Source = engine.Source.TransportName,
            Slots = engine.Plan.Slots,
            TotalExperts = engine.Config.TotalExperts,
            TimeToFirstTokenMs = result.TimeToFirstTokenSeconds * 1e3,
            DecodeTokensPerSecond = result.DecodeTokensPerSecond,
            TotalSeconds = result.TotalSeconds,
            Hits = stats.Hits,
            Misses = stats.Misses,
            HitRate = stats.HitRate,
            LayerHitRates = [.. Enumerable.Range(0, engine.Config.ExpertLayers).Select(stats.LayerHitRate)],
            Evictions = stats.Evictions,
            BytesFetched = engine.Counters.BytesFetched,
            Fetches = engine.Counters.Fetches,
            StallMs = engine.Counters.StallNs / 1e6,
            ComputeMs = engine.Counters.ComputeNs / 1e6,
            PrefetchesIssued = stats.PrefetchesIssued,
            PrefetchesUsed = stats.PrefetchesUsed,
            PrefetchPrecision = stats.PrefetchPrecision,
            DenseBytes = engine.Plan.DenseBytes,
            KvCacheBytes = engine.Plan.KvCacheBytes,
            SlotBytes = engine.Plan.SlotBytes,
            DeviceBudgetBytes = engine.Device.Memory.CapacityBytes,
            FetchRetries = engine.Source.Retries,
            MeanFetchMs = engine.Counters.Fetches > 0 ? engine.Counters.FetchNs / 1e6 / engine.Counters.Fetches : 0,
            MeanFetchQueuedMs = engine.Counters.Fetches > 0 ? engine.Counters.FetchQueuedNs / 1e6 / engine.Counters.Fetches : 0,
            CorruptBlocks = engine.Source.CorruptBlocks,
            Tokens = result.Tokens,
            FetchLog = engine.Counters.FetchLog,
        };
    }

    public string ToText()
    {
        var c = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        s.AppendLine(c, $"generated {GeneratedTokens} tokens after {PromptTokens} prompt tokens on {Device}: policy {Policy}, prefetch {Prefetch}, experts from {Source}");
        s.AppendLine(c, $"  residency        {Slots} of {TotalExperts} experts in slots ({100.0 * Slots / TotalExperts:0.#}%), budget {ByteSize.Format(DeviceBudgetBytes)} = dense {ByteSize.Format(DenseBytes)} + KV cache {ByteSize.Format(KvCacheBytes)} + scratch + slots of {ByteSize.Format(SlotBytes)}");
        s.AppendLine(c, $"  time to first    {TimeToFirstTokenMs:0.0} ms");
        s.AppendLine(c, $"  decode           {DecodeTokensPerSecond:0.00} tokens/s ({TotalSeconds:0.00} s in all)");
        s.AppendLine(c, $"  hit rate         {100 * HitRate:0.0}% ({Hits} hits, {Misses} misses, {Evictions} evictions)");
        s.AppendLine(c, $"  per layer        {string.Join(" ", LayerHitRates.Select((r, i) => $"L{i} {100 * r:0}%"))}");
        s.AppendLine(c, $"  fetched          {ByteSize.Format(BytesFetched)} in {Fetches} fetches{(FetchRetries > 0 ? $" ({FetchRetries} retries, {CorruptBlocks} corrupt blocks refused)" : "")}");
        s.AppendLine(c, $"  stall            {StallMs:0.0} ms waiting for experts, {ComputeMs:0.0} ms computing");
        s.Append(c, $"  prefetch         {PrefetchesIssued} issued, {PrefetchesUsed} used (precision {100 * PrefetchPrecision:0.0}%)");
        return s.ToString();
    }

    public void WriteJson(string path) =>
        File.WriteAllText(path, JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
}
