namespace Fabric.Engine.Server;

/// <summary>How <c>fabric-engine serve</c> listens and admits. Times in seconds unless named otherwise.</summary>
public sealed record ServeSettings
{
    /// <summary>The HTTP address to listen on (<c>--listen</c>), e.g. http://127.0.0.1:8000; port 0 picks a free port.</summary>
    public required Uri Listen { get; init; }

    /// <summary>The model id /v1/models lists and requests may name.</summary>
    public required string ModelName { get; init; }

    /// <summary>Sequences decoding together (<c>--max-batch</c>).</summary>
    public int MaxBatch { get; init; } = 8;

    /// <summary>Requests queued beyond the running batch before 429 (<c>--max-waiting</c>).</summary>
    public int MaxWaiting { get; init; } = 64;

    /// <summary>After SIGTERM, how long running requests may take to finish before they are cut (<c>--drain-timeout</c>).</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
