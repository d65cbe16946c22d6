namespace Fabric.Transport.Rdma;

/// <summary>Options only the rdma:// client has.</summary>
public sealed record RdmaClientOptions
{
    /// <summary>
    /// Run each read's continuation on the completion-polling thread instead of the thread pool. Lowest latency (the
    /// latency benchmark uses it); the awaiting code must then never block, or completions stall behind it.
    /// </summary>
    public bool InlineContinuations { get; init; }

    public static RdmaClientOptions Default { get; } = new();
}
