namespace Fabric.Engine.Serving;

/// <summary>What the scheduler counts for <c>/metrics</c>: requests, tokens, latencies and the KV cache. Thread-safe reads.</summary>
public sealed class ServingMetrics
{
    private long _promptTokens;
    private long _completionTokens;
    private long _requestsFinished;
    private long _requestsRejected;

    /// <summary>Time from a request's arrival to its first token, seconds.</summary>
    public LatencyHistogram TimeToFirstToken { get; } = new();

    /// <summary>Time between a request's consecutive tokens, seconds.</summary>
    public LatencyHistogram InterTokenLatency { get; } = new();

    public int Running { get; internal set; }

    public int Waiting { get; internal set; }

    public int KvLanesUsed { get; internal set; }

    public int KvLanesTotal { get; internal set; }

    public int KvBlocksUsed { get; internal set; }

    public int KvBlocksTotal { get; internal set; }

    /// <summary>Batched steps run.</summary>
    public long Steps { get; internal set; }

    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    public long RequestsFinished => Interlocked.Read(ref _requestsFinished);

    /// <summary>Requests refused because the waiting queue was full.</summary>
    public long RequestsRejected => Interlocked.Read(ref _requestsRejected);

    internal void AddPromptTokens(long n) => Interlocked.Add(ref _promptTokens, n);

    internal void AddCompletionToken() => Interlocked.Increment(ref _completionTokens);

    internal void AddFinished() => Interlocked.Increment(ref _requestsFinished);

    internal void AddRejected() => Interlocked.Increment(ref _requestsRejected);
}
