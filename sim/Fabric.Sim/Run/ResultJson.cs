using System.Text.Json;
using System.Text.Json.Nodes;

namespace Fabric.Sim.Run;

/// <summary>The machine-readable form of a <see cref="SimResult"/> (what <c>--json PATH</c> writes).</summary>
public static class ResultJson
{
    public static JsonObject ToJson(SimResult r) => new()
    {
        ["topology"] = r.Topology,
        ["workload"] = r.Workload,
        ["policy"] = r.Policy,
        ["prefetch"] = r.Prefetch,
        ["predictor"] = r.Predictor,
        ["sharing"] = r.Sharing,
        ["slots"] = r.Slots,
        ["tokens"] = r.Tokens,
        ["tokens_per_second"] = r.TotalTokensPerSecond,
        ["token_latency_p50_ns"] = r.TokenLatencyPercentile(50),
        ["token_latency_p99_ns"] = r.TokenLatencyPercentile(99),
        ["hit_rate"] = r.HitRate,
        ["stall_ns"] = r.StallNs,
        ["bytes_fetched"] = r.BytesFetched,
        ["makespan_ns"] = r.MakespanNs,
        ["events"] = r.Events,
        ["wall_seconds"] = r.WallSeconds,
        ["engines"] = new JsonArray([.. r.Engines.Select(e => (JsonNode)new JsonObject
        {
            ["device"] = e.Device,
            ["tokens"] = e.Tokens,
            ["tokens_per_second"] = e.TokensPerSecond,
            ["hit_rate"] = e.HitRate,
            ["stall_ns"] = e.StallNs,
            ["compute_ns"] = e.ComputeNs,
            ["prefill_ns"] = e.PrefillNs,
            ["bytes_fetched"] = e.BytesFetched,
            ["demand_fetches"] = e.DemandFetches,
            ["prefetches"] = e.Prefetches,
            ["prefetch_precision"] = e.PrefetchPrecision,
        })]),
        ["links"] = new JsonArray([.. r.Channels.Take(50).Select(c => (JsonNode)new JsonObject
        {
            ["link"] = c.Name,
            ["kind"] = c.Kind,
            ["bandwidth_bytes_per_second"] = c.Bandwidth,
            ["bytes"] = c.BytesCarried,
            ["utilisation"] = c.Utilisation,
        })]),
    };

    public static void Write(string path, JsonNode node) =>
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
}
