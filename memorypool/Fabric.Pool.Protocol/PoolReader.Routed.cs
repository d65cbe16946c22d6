using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Fabric.Common;
using Fabric.Pool.Protocol.Discovery;
using Fabric.Transport;

namespace Fabric.Pool.Protocol;

/// <summary>The routed mode of <see cref="PoolReader"/>: many pools, each holding a share of the experts, found by an <see cref="IPoolRouter"/>.</summary>
public sealed partial class PoolReader
{
    /// <summary>How long a pool that failed a read or a connect is passed over before it is tried again.</summary>
    private static readonly TimeSpan PassOver = TimeSpan.FromSeconds(1);

    /// <summary>How long a read waits for some pool to hold its block, when none does, unless told otherwise.</summary>
    public static readonly TimeSpan DefaultHolderWait = TimeSpan.FromSeconds(10);

    private readonly IPoolRouter? _router;
    private readonly ConcurrentDictionary<FabricEndpoint, Link>? _links;
    private readonly TimeSpan _holderWait;
    private FabricEndpoint? _lastRouted;

    private PoolReader(IPoolRouter router, ConcurrentDictionary<FabricEndpoint, Link> links, string? token, FabricClientOptions options, CatalogReply reference, TimeSpan holderWait)
    {
        _endpoints = [];
        _router = router;
        _links = links;
        _token = token;
        _options = options;
        _holderWait = holderWait;
        Reference = new CatalogIndex(reference);
    }

    /// <summary>
    /// Connects to the pools <paramref name="router"/> lists and merges their catalogs into the reference every read is
    /// held to. Waits at most <paramref name="holderWait"/> (default 10 s) for the pools to hold every expert between
    /// them; then one sentence names the first expert that no pool holds, or says that no pool answered.
    /// </summary>
    public static async Task<PoolReader> ConnectAsync(IPoolRouter router, string? token, FabricClientOptions? options = null, TimeSpan? holderWait = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(router);
        options ??= DefaultOptions;
        var wait = holderWait ?? DefaultHolderWait;
        var links = new ConcurrentDictionary<FabricEndpoint, Link>();
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var changed = router.Changed;
            var catalogs = new List<CatalogReply>();
            string? error = null;
            foreach (var endpoint in router.Pools)
            {
                var link = links.GetOrAdd(endpoint, static e => new Link(e));
                try
                {
                    link.Connection ??= await PoolConnection.ConnectAsync(endpoint, token, options, cancellationToken).ConfigureAwait(false);
                    catalogs.Add(link.Connection.Catalog);
                }
                catch (ControlException)
                {
                    await DisposeLinksAsync(links).ConfigureAwait(false);
                    throw;
                }
                catch (Exception e) when (e is FabricException or TimeoutException)
                {
                    error ??= e.Message;
                }
            }
            CatalogReply? merged = null;
            var missing = catalogs.Count == 0 ? null : Merge(catalogs, out merged);
            if (merged is not null && missing is null)
            {
                router.Tabulate(merged.Model.NumHiddenLayers, merged.Model.NumLocalExperts);
                return new PoolReader(router, links, token, options, merged, wait);
            }
            if (watch.Elapsed > wait)
            {
                await DisposeLinksAsync(links).ConfigureAwait(false);
                var waited = $"waited {wait.TotalSeconds:0.#} s";
                throw new FabricException(catalogs.Count == 0
                    ? $"No pool at {router.Source} answered ({waited}){(error is null ? "; start one with 'fabric pool serve --etcd'" : ": " + error.TrimEnd('.'))}."
                    : $"No pool registered at {router.Source} holds {missing} ({waited}).");
            }
            await Task.WhenAny(changed, Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// The pools' catalogs as one: the model and dense tensors of the first, and each expert from the first catalog that
    /// holds it. Null when every expert is held, else the first expert that no catalog holds ("expert 2/5").
    /// </summary>
    private static string? Merge(List<CatalogReply> catalogs, out CatalogReply? merged)
    {
        var first = catalogs[0];
        var experts = new ExpertEntry[first.Experts.Length];
        string? missing = null;
        for (var i = 0; i < experts.Length; i++)
        {
            ExpertEntry? held = null;
            foreach (var c in catalogs)
            {
                if (i < c.Experts.Length && c.Experts[i].Length > 0)
                {
                    held = c.Experts[i];
                    break;
                }
            }
            // Locations are per pool; the reference keeps only what every copy must match (length, checksum, parts).
            experts[i] = held is null ? first.Experts[i] : held with { RegionId = 0, Offset = 0 };
            if (held is null && missing is null)
                missing = $"expert {first.Experts[i].Layer}/{first.Experts[i].Expert}";
        }
        merged = first with { Regions = [], Experts = experts, Dense = [.. first.Dense.Select(d => d with { RegionId = 0, Offset = 0 })] };
        return missing;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<long> ReadRoutedAsync(Block block, BlockLocation reference, Memory<byte> destination, CancellationToken cancellationToken)
    {
        long moved = 0;
        string? last = null;
        long waitingSince = 0;
        var layer = block.Layer;
        var expert = block.DenseName is null ? block.Expert : -1;
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            if (attempt > 0)
                Interlocked.Increment(ref _retries);
            var changed = _router!.Changed;
            var link = Pick(_router.Holders(layer, expert));
            if (link is null)
            {
                if (waitingSince == 0)
                    waitingSince = Stopwatch.GetTimestamp();
                if (Stopwatch.GetElapsedTime(waitingSince) > _holderWait)
                {
                    throw new FabricException(_router.Holders(layer, expert).Count == 0
                        ? $"No pool registered at {_router.Source} holds {block} (waited {_holderWait.TotalSeconds:0.#} s)."
                        : $"Could not fetch {block} from any pool that holds it ({string.Join(", ", _router.Holders(layer, expert))}): {last ?? "none could be reached"}.");
                }
                await Task.WhenAny(changed, Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken)).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                continue;
            }
            var (connection, generation) = await ConnectLinkAsync(link, cancellationToken).ConfigureAwait(false);
            if (connection is null)
            {
                last = $"{link.Endpoint} cannot be reached";
                continue;
            }
            if (!block.TryLocate(connection.Index, out var where) || where.Length != reference.Length)
            {
                last = $"{link.Endpoint} serves a different model";
                await InvalidateLinkAsync(link, generation).ConfigureAwait(false);
                continue;
            }
            var (status, good) = await ReadAndHashAsync(connection.Transport, where, destination, reference.Checksum, cancellationToken).ConfigureAwait(false);
            if (status == ReadStatus.Ok)
            {
                moved += destination.Length;
                if (good)
                {
                    Volatile.Write(ref _lastRouted, link.Endpoint);
                    return moved;
                }
                Interlocked.Increment(ref _corrupt);
                last = $"the block read from {link.Endpoint} failed its checksum";
                if (Interlocked.Increment(ref link.CorruptReads) % 2 == 0)
                    await InvalidateLinkAsync(link, generation).ConfigureAwait(false);
                continue;
            }
            last = $"{link.Endpoint}: {status.Describe()}";
            await InvalidateLinkAsync(link, generation).ConfigureAwait(false);
        }
        throw new FabricException($"Could not fetch {block} from the pools at {_router!.Source}: {last ?? "no pool could be reached"}.");
    }

    /// <summary>The first holder not being passed over, or null when there is none.</summary>
    private Link? Pick(IReadOnlyList<FabricEndpoint> holders)
    {
        var now = Stopwatch.GetTimestamp();
        for (var i = 0; i < holders.Count; i++)
        {
            var link = _links!.GetOrAdd(holders[i], static e => new Link(e));
            if (Volatile.Read(ref link.PassOverUntil) <= now)
                return link;
        }
        return null;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(PoolConnection? Connection, int Generation)> ConnectLinkAsync(Link link, CancellationToken cancellationToken)
    {
        var connection = Volatile.Read(ref link.Connection);
        if (connection is not null && connection.Transport.IsConnected)
            return (connection, Volatile.Read(ref link.Generation));
        await link.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (link.Connection is { Transport.IsConnected: true })
                return (link.Connection, link.Generation);
            if (link.Connection is not null)
            {
                await link.Connection.DisposeAsync().ConfigureAwait(false);
                link.Connection = null;
                link.Generation++;
            }
            try
            {
                link.Connection = await PoolConnection.ConnectAsync(link.Endpoint, _token, _options, cancellationToken).ConfigureAwait(false);
                if (link.Generation > 0)
                    Interlocked.Increment(ref _reconnects);
                return (link.Connection, link.Generation);
            }
            catch (Exception e) when (e is FabricException or TimeoutException)
            {
                PassOverLink(link);
                return (null, link.Generation);
            }
        }
        finally
        {
            link.Gate.Release();
        }
    }

    private static async ValueTask InvalidateLinkAsync(Link link, int generation)
    {
        PassOverLink(link);
        await link.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (link.Generation != generation || link.Connection is null)
                return;
            await link.Connection.DisposeAsync().ConfigureAwait(false);
            link.Connection = null;
            link.Generation++;
        }
        finally
        {
            link.Gate.Release();
        }
    }

    private static void PassOverLink(Link link) =>
        Volatile.Write(ref link.PassOverUntil, Stopwatch.GetTimestamp() + (long)(PassOver.TotalSeconds * Stopwatch.Frequency));

    private static async Task DisposeLinksAsync(ConcurrentDictionary<FabricEndpoint, Link> links)
    {
        foreach (var link in links.Values)
        {
            if (link.Connection is { } c)
                await c.DisposeAsync().ConfigureAwait(false);
            link.Connection = null;
        }
    }

    /// <summary>One pool as the routed reader sees it: its connection (replaced after a failure) and when to try it again.</summary>
    private sealed class Link(FabricEndpoint endpoint)
    {
        public readonly FabricEndpoint Endpoint = endpoint;
        public readonly SemaphoreSlim Gate = new(1, 1);
        public PoolConnection? Connection;
        public int Generation;
        public long PassOverUntil;
        public long CorruptReads;
    }
}
