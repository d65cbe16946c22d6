namespace Fabric.Transport;

/// <summary>
/// What one client session may cost a socket server (tcp, the shm control socket), whatever the client does. Limits
/// are enforced by backpressure: past them the server stops reading that session's socket, so memory stays bounded.
/// </summary>
public sealed record SessionLimits
{
    /// <summary>
    /// Control requests a session may have between "read by the server" and "reply sent"; the next one is not read
    /// until one of them has gone out. Bounds the replies buffered for a client that does not read them.
    /// </summary>
    public int MaxInFlightControls { get; init; } = 16;

    /// <summary>The largest control body, in bytes, a session may send before it has authenticated.</summary>
    public int MaxUnauthenticatedBodyBytes { get; init; } = 64 * 1024;

    /// <summary>A session that has not authenticated and sends no complete frame for this long is closed.</summary>
    public TimeSpan UnauthenticatedIdleTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// An authenticated session that sends no complete frame for this long is closed; null (the default) lets it idle,
    /// since an shm client reads by loads and may never need its control socket again.
    /// </summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary>A frame whose first byte has arrived must be complete within this time, or the session is closed.</summary>
    public TimeSpan FrameTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public static SessionLimits Default { get; } = new();

    /// <summary>How often a server checks its sessions' deadlines: a quarter of the shortest, from 20 ms to 1 s.</summary>
    internal TimeSpan CheckPeriod
    {
        get
        {
            var shortest = new[] { UnauthenticatedIdleTimeout, FrameTimeout, IdleTimeout ?? TimeSpan.MaxValue }.Min();
            return TimeSpan.FromMilliseconds(Math.Clamp(shortest.TotalMilliseconds / 4, 20, 1000));
        }
    }

    internal void Validate()
    {
        if (MaxInFlightControls < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxInFlightControls), MaxInFlightControls, "At least one control request must be allowed in flight.");
        if (MaxUnauthenticatedBodyBytes < 0 || MaxUnauthenticatedBodyBytes > ControlTypes.MaxBodyBytes)
            throw new ArgumentOutOfRangeException(nameof(MaxUnauthenticatedBodyBytes), MaxUnauthenticatedBodyBytes, $"Give 0 to {ControlTypes.MaxBodyBytes} bytes.");
        if (UnauthenticatedIdleTimeout <= TimeSpan.Zero || FrameTimeout <= TimeSpan.Zero || IdleTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(FrameTimeout), "Session timeouts must be positive.");
    }
}
