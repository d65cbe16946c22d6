using System.Collections.Concurrent;
using Fabric.Transport;

namespace Fabric.Pool.Server.Serving;

/// <summary>Bytes and reads served, and reads refused, per (tenant, transport); thread-safe.</summary>
public sealed class TenantCounters
{
    private readonly ConcurrentDictionary<(string Tenant, string Transport), Counter> _counters = new();

    /// <summary>The tenant name a session counts under before it authenticates.</summary>
    public const string Unauthenticated = "(unauthenticated)";

    /// <summary>Records one read as the transport reported it.</summary>
    public void Record(ServerSession session, ReadStatus status, long bytes)
    {
        var counter = _counters.GetOrAdd((session.Principal ?? Unauthenticated, session.Transport), static _ => new Counter());
        if (status == ReadStatus.Ok)
        {
            Interlocked.Add(ref counter.Bytes, bytes);
            Interlocked.Increment(ref counter.Reads);
        }
        else
        {
            Interlocked.Increment(ref counter.Errors);
        }
    }

    /// <summary>A snapshot: (tenant, transport, bytes, reads, errors).</summary>
    public IReadOnlyList<(string Tenant, string Transport, long Bytes, long Reads, long Errors)> Snapshot() =>
        _counters.Select(kv => (kv.Key.Tenant, kv.Key.Transport, Interlocked.Read(ref kv.Value.Bytes), Interlocked.Read(ref kv.Value.Reads), Interlocked.Read(ref kv.Value.Errors)))
            .OrderBy(x => x.Tenant, StringComparer.Ordinal).ThenBy(x => x.Transport, StringComparer.Ordinal).ToList();

    private sealed class Counter
    {
        public long Bytes;
        public long Reads;
        public long Errors;
    }
}
