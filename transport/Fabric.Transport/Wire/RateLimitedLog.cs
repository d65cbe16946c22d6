using Microsoft.Extensions.Logging;

namespace Fabric.Transport.Wire;

/// <summary>
/// Warnings about refused clients, at most <see cref="PerSecond"/> a second per server, so that a reconnect storm
/// cannot flood the log; how many were left out is said with the next one written.
/// </summary>
internal sealed class RateLimitedLog(ILogger logger)
{
    public const int PerSecond = 20;
    private readonly Lock _lock = new();
    private long _windowStart = Environment.TickCount64;
    private int _written;
    private int _suppressed;

    public void Warn(string message)
    {
        if (!logger.IsEnabled(LogLevel.Warning))
            return;
        int suppressed;
        lock (_lock)
        {
            var now = Environment.TickCount64;
            if (now - _windowStart >= 1000)
            {
                _windowStart = now;
                _written = 0;
            }
            if (_written >= PerSecond)
            {
                _suppressed++;
                return;
            }
            _written++;
            suppressed = _suppressed;
            _suppressed = 0;
        }
        if (suppressed > 0)
            logger.LogWarning("{Message} ({Suppressed} similar event(s) left out)", message, suppressed);
        else
            logger.LogWarning("{Message}", message);
    }
}
