using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using Fabric.Common;
using Fabric.Pool.Protocol.Discovery;
using Fabric.Transport;

namespace Fabric.Pool.Protocol;

/// <summary>
/// The one client-side reader of a bank, over one or more pools that serve the same model (endpoints in failover
/// order). A block — an expert or a dense tensor — is read in 1 MiB pieces, all in flight at once, and hashed
/// piece by piece as it arrives; it is returned only when its xxHash64 matches the first pool's catalog. A failed
/// read, a dead connection or a corrupt block is retried, first on a fresh connection to the same endpoint, then on
/// the next endpoint, and a corrupt block is never handed back. Thread-safe: many reads may be in flight. A read
/// allocates nothing once the reader is warm.
/// Routed (<see cref="ConnectAsync(IPoolRouter, string?, FabricClientOptions?, TimeSpan?, CancellationToken)"/>),
/// the pools come and go as an <see cref="IPoolRouter"/> says (etcd discovery, shards and replicas): each block is
/// read from the best pool that holds it, over a connection per pool, and a failed or corrupt read moves to the next
/// holder (a pool that failed is passed over for a second); the reference catalog is the pools' catalogs merged.
/// </summary>
public sealed partial class PoolReader : IAsyncDisposable
{
    /// <summary>Bytes per piece when a block is split so that hashing each piece overlaps the arrival of the next.</summary>
    public const int ChunkBytes = 1 << 20;

    private readonly FabricEndpoint[] _endpoints;
    private readonly string? _token;
    private readonly FabricClientOptions _options;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ConcurrentQueue<XxHash64> _hashers = new();
    private PoolConnection? _connection;
    private int _generation;
    private int _endpointIndex;
    private long _retries;
    private long _corrupt;
    private long _reconnects;

    private PoolReader(FabricEndpoint[] endpoints, string? token, FabricClientOptions options, PoolConnection first, int index)
    {
        _endpoints = endpoints;
        _token = token;
        _options = options;
        _connection = first;
        _endpointIndex = index;
        Reference = first.Index;
    }

    /// <summary>The timeouts used when none are given: 3 s to connect, 10 s per read.</summary>
    private static readonly FabricClientOptions DefaultOptions = new() { ConnectTimeout = TimeSpan.FromSeconds(3), OperationTimeout = TimeSpan.FromSeconds(10) };

    /// <summary>
    /// Connects to the first endpoint that answers (in order), authenticates with <paramref name="token"/> and reads
    /// its catalog, which every later read is checked against. A wrong token throws <see cref="ControlException"/>;
    /// when no endpoint answers, a <see cref="FabricException"/> names each one's failure.
    /// </summary>
    public static async Task<PoolReader> ConnectAsync(IReadOnlyList<FabricEndpoint> endpoints, string? token, FabricClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (endpoints.Count == 0)
            throw new FabricException("No pool endpoint was given; name at least one, more than one for failover.");
        options ??= DefaultOptions;
        var errors = new List<string>();
        for (var i = 0; i < endpoints.Count; i++)
        {
            try
            {
                var connection = await PoolConnection.ConnectAsync(endpoints[i], token, options, cancellationToken).ConfigureAwait(false);
                return new PoolReader([.. endpoints], token, options, connection, i);
            }
            catch (ControlException)
            {
                throw;
            }
            catch (FabricException e)
            {
                errors.Add(e.Message);
            }
        }
        throw new FabricException($"No pool endpoint answered: {string.Join(" ", errors)}");
    }

    /// <summary>The first pool's catalog, indexed: the model, the layout and the checksums every read is held to.</summary>
    public CatalogIndex Reference { get; }

    /// <summary>The first pool's catalog.</summary>
    public CatalogReply Catalog => Reference.Catalog;

    /// <summary>The endpoint reads go to now.</summary>
    public FabricEndpoint CurrentEndpoint => _router is null ? _endpoints[Volatile.Read(ref _endpointIndex)] : Volatile.Read(ref _lastRouted) ?? _router.Pools.FirstOrDefault() ?? _endpoints[0];

    /// <summary>Reads that were repeated (failed status, dead connection or bad checksum).</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Blocks whose checksum did not match (never handed back).</summary>
    public long CorruptBlocks => Interlocked.Read(ref _corrupt);

    /// <summary>Connections replaced after a failure (to the same or another endpoint).</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>
    /// Reads expert (<paramref name="layer"/>, <paramref name="expert"/>) — gate, up and down as the catalog packs
    /// them — into the first <c>Length</c> bytes of <paramref name="destination"/> and verifies it. Returns the bytes
    /// moved over the transport, failed attempts included. Throws <see cref="FabricException"/> when no endpoint can
    /// deliver a verified copy.
    /// </summary>
    public ValueTask<long> ReadExpertAsync(int layer, int expert, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (!Reference.TryGetExpert(layer, expert, out var reference))
            throw new ArgumentOutOfRangeException(nameof(expert), $"The model has no expert {layer}/{expert}.");
        var block = new Block(layer, expert, null);
        var target = destination[..checked((int)reference.Length)];
        return _router is null ? ReadVerifiedAsync(block, reference, target, cancellationToken) : ReadRoutedAsync(block, reference, target, cancellationToken);
    }

    /// <summary>Reads dense tensor <paramref name="name"/> into <paramref name="destination"/> and verifies it, as <see cref="ReadExpertAsync"/> does.</summary>
    public ValueTask<long> ReadDenseAsync(string name, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (!Reference.TryGetDense(name, out var reference))
            throw new FabricException($"The pool's catalog has no dense tensor {name}.");
        var block = new Block(0, 0, name);
        var target = destination[..checked((int)reference.Length)];
        return _router is null ? ReadVerifiedAsync(block, reference, target, cancellationToken) : ReadRoutedAsync(block, reference, target, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<long> ReadVerifiedAsync(Block block, BlockLocation reference, Memory<byte> destination, CancellationToken cancellationToken)
    {
        long moved = 0;
        var attempts = (2 * _endpoints.Length) + 2;
        string? last = null;
        for (var attempt = 0; attempt < attempts; attempt++)
        {
            if (attempt > 0)
                Interlocked.Increment(ref _retries);
            var (connection, generation) = await CurrentAsync(cancellationToken).ConfigureAwait(false);
            if (connection is null)
                break;
            // The first pool's own connection needs no second lookup; a reconnection or another pool may lay the bank out anew.
            var where = reference;
            if (connection.Index != Reference && (!block.TryLocate(connection.Index, out where) || where.Length != reference.Length))
            {
                last = $"{connection.Endpoint} serves a different model";
                await InvalidateAsync(generation, moveOn: true).ConfigureAwait(false);
                continue;
            }
            var (status, good) = await ReadAndHashAsync(connection.Transport, where, destination, reference.Checksum, cancellationToken).ConfigureAwait(false);
            if (status == ReadStatus.Ok)
            {
                moved += destination.Length;
                if (good)
                    return moved;
                Interlocked.Increment(ref _corrupt);
                last = $"the block read from {connection.Endpoint} failed its checksum";
                // A second bad copy from the same endpoint moves on to the next one.
                if (attempt % 2 == 1)
                    await InvalidateAsync(generation, moveOn: true).ConfigureAwait(false);
                continue;
            }
            last = $"{connection.Endpoint}: {status.Describe()}";
            await InvalidateAsync(generation, moveOn: status is not (ReadStatus.PeerGone or ReadStatus.TimedOut)).ConfigureAwait(false);
        }
        throw new FabricException($"Could not fetch {block} from any pool endpoint ({string.Join(", ", _endpoints.Select(e => e.ToString()))}): {last ?? "no endpoint could be reached"}.");
    }

    /// <summary>
    /// Issues the block as 1 MiB reads all at once and hashes each piece as soon as it (and those before it) arrived,
    /// while it is still in cache: one pass over memory instead of a read and a separate verify pass.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(ReadStatus Status, bool ChecksumOk)> ReadAndHashAsync(IFabricClient transport, BlockLocation where, Memory<byte> destination,
        ulong checksum, CancellationToken cancellationToken)
    {
        var chunks = (destination.Length + ChunkBytes - 1) / ChunkBytes;
        var pending = ArrayPool<ValueTask<ReadStatus>>.Shared.Rent(chunks);
        if (!_hashers.TryDequeue(out var hash))
            hash = new XxHash64();
        var status = ReadStatus.Ok;
        try
        {
            for (var i = 0; i < chunks; i++)
            {
                var start = i * ChunkBytes;
                pending[i] = transport.ReadAsync(where.Request(destination.Slice(start, Math.Min(ChunkBytes, destination.Length - start)), start), cancellationToken);
            }
            for (var i = 0; i < chunks; i++)
            {
                var s = await pending[i].ConfigureAwait(false);
                pending[i] = default;
                if (s != ReadStatus.Ok && status == ReadStatus.Ok)
                    status = s;
                if (status == ReadStatus.Ok)
                {
                    var start = i * ChunkBytes;
                    hash.Append(destination.Span.Slice(start, Math.Min(ChunkBytes, destination.Length - start)));
                }
            }
            return (status, status == ReadStatus.Ok && hash.GetCurrentHashAsUInt64() == checksum);
        }
        finally
        {
            ArrayPool<ValueTask<ReadStatus>>.Shared.Return(pending, clearArray: true);
            hash.Reset();
            _hashers.Enqueue(hash);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(PoolConnection? Connection, int Generation)> CurrentAsync(CancellationToken cancellationToken)
    {
        var connection = Volatile.Read(ref _connection);
        if (connection is not null && connection.Transport.IsConnected)
            return (connection, Volatile.Read(ref _generation));
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_connection is not null && _connection.Transport.IsConnected)
                return (_connection, _generation);
            if (_connection is not null)
            {
                await _connection.DisposeAsync().ConfigureAwait(false);
                _connection = null;
                _generation++;
            }
            // Reconnect: the same endpoint first (a restarted pool), then each other one in turn.
            for (var i = 0; i < _endpoints.Length; i++)
            {
                var index = (_endpointIndex + i) % _endpoints.Length;
                try
                {
                    _connection = await PoolConnection.ConnectAsync(_endpoints[index], _token, _options, cancellationToken).ConfigureAwait(false);
                    Volatile.Write(ref _endpointIndex, index);
                    Interlocked.Increment(ref _reconnects);
                    return (_connection, _generation);
                }
                catch (FabricException)
                {
                }
                catch (TimeoutException)
                {
                }
            }
            return (null, _generation);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask InvalidateAsync(int generation, bool moveOn)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_generation != generation || _connection is null)
                return;
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
            _generation++;
            if (moveOn)
                Volatile.Write(ref _endpointIndex, (_endpointIndex + 1) % _endpoints.Length);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
            await _connection.DisposeAsync().ConfigureAwait(false);
        _connection = null;
        if (_links is not null)
        {
            foreach (var link in _links.Values)
            {
                if (link.Connection is { } c)
                    await c.DisposeAsync().ConfigureAwait(false);
                link.Connection = null;
            }
        }
        _gate.Dispose();
    }

    /// <summary>
    /// The block a read asks for — an expert or a dense tensor — found afresh in each pool's catalog (a failover pool
    /// may lay the bank out differently). A value, so that a read formats no description unless it finally fails.
    /// </summary>
    private readonly record struct Block(int Layer, int Expert, string? DenseName)
    {
        public bool TryLocate(CatalogIndex index, out BlockLocation location) =>
            DenseName is { } name ? index.TryGetDense(name, out location) : index.TryGetExpert(Layer, Expert, out location);

        public override string ToString() => DenseName is { } name ? $"dense tensor {name}" : $"expert {Layer}/{Expert}";
    }
}
