using System.Globalization;
using System.Text;
using Fabric.Engine.Serving;

namespace Fabric.Engine.Server;

/// <summary>The Prometheus text exposition (format 0.0.4) of the scheduler's and the engine's counters for <c>/metrics</c>.</summary>
public static class MetricsExposition
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Render(BatchScheduler? scheduler, bool ready, bool draining)
    {
        var s = new StringBuilder();
        Gauge(s, "fabric_ready", "1 once the model is loaded and requests are admitted.", ready && !draining ? 1 : 0);
        Gauge(s, "fabric_draining", "1 while the server finishes running requests before exiting.", draining ? 1 : 0);
        if (scheduler is null)
            return s.ToString();
        var m = scheduler.Metrics;
        var engine = scheduler.Engine;
        var stats = engine.Pager.Stats;
        Gauge(s, "fabric_requests_running", "Requests in the running batch.", m.Running);
        Gauge(s, "fabric_requests_waiting", "Requests queued for a free KV lane.", m.Waiting);
        Counter(s, "fabric_requests_finished_total", "Requests that ended (any reason).", m.RequestsFinished);
        Counter(s, "fabric_requests_rejected_total", "Requests refused with 429 because the waiting queue was full.", m.RequestsRejected);
        Counter(s, "fabric_prompt_tokens_total", "Prompt tokens admitted.", m.PromptTokens);
        Counter(s, "fabric_completion_tokens_total", "Tokens generated.", m.CompletionTokens);
        Counter(s, "fabric_engine_steps_total", "Batched engine steps.", m.Steps);
        Histogram(s, "fabric_time_to_first_token_seconds", "Time from a request's arrival to its first token.", m.TimeToFirstToken);
        Histogram(s, "fabric_inter_token_latency_seconds", "Time between consecutive tokens of a request.", m.InterTokenLatency);
        Counter(s, "fabric_expert_hits_total", "Expert uses served from a resident slot.", stats.Hits);
        Counter(s, "fabric_expert_misses_total", "Expert uses that had to be fetched.", stats.Misses);
        Gauge(s, "fabric_expert_hit_ratio", "Hits over uses since start.", stats.HitRate);
        Counter(s, "fabric_expert_bytes_fetched_total", "Expert bytes read from the pool (or checkpoint) into slots since start.", engine.Counters.BytesFetched);
        Counter(s, "fabric_stall_seconds_total", "Time the compute thread waited for expert fetches.", engine.Counters.StallNs / 1e9);
        Gauge(s, "fabric_kv_blocks_used", $"KV cache blocks of {KvLanes.BlockPositions} positions that running sequences fill.", m.KvBlocksUsed);
        Gauge(s, "fabric_kv_blocks_free", $"KV cache blocks of {KvLanes.BlockPositions} positions not in use.", m.KvBlocksTotal - m.KvBlocksUsed);
        Gauge(s, "fabric_kv_lanes_used", "KV cache lanes held by running sequences.", m.KvLanesUsed);
        Gauge(s, "fabric_kv_lanes_free", "KV cache lanes free for new requests.", m.KvLanesTotal - m.KvLanesUsed);
        return s.ToString();
    }

    private static void Gauge(StringBuilder s, string name, string help, double value) => Metric(s, name, help, "gauge", value);

    private static void Counter(StringBuilder s, string name, string help, double value) => Metric(s, name, help, "counter", value);

    private static void Metric(StringBuilder s, string name, string help, string type, double value)
    {
        s.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        s.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        s.Append(name).Append(' ').Append(Number(value)).Append('\n');
    }

    private static void Histogram(StringBuilder s, string name, string help, LatencyHistogram histogram)
    {
        var (cumulative, sum, count) = histogram.Snapshot();
        s.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        s.Append("# TYPE ").Append(name).Append(" histogram\n");
        for (var i = 0; i < cumulative.Length; i++)
            s.Append(name).Append("_bucket{le=\"").Append(Number(histogram.Bounds[i])).Append("\"} ").Append(cumulative[i]).Append('\n');
        s.Append(name).Append("_bucket{le=\"+Inf\"} ").Append(count).Append('\n');
        s.Append(name).Append("_sum ").Append(Number(sum)).Append('\n');
        s.Append(name).Append("_count ").Append(count).Append('\n');
    }

    private static string Number(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
