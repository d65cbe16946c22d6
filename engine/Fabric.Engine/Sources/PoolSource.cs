using System.IO.Hashing;
using Fabric.Engine.Device;
using Fabric.Engine.Paging;
using Fabric.Pool.Protocol;
using Fabric.Model;
using Fabric.Transport;
using Fabric.Common;

namespace Fabric.Engine.Sources;

/// <summary>
/// Weights from one or more pool endpoints (<c>--pool</c> given once or more) over the transport. Every block is
/// verified against the xxHash64 of the first catalog before it is returned; a failed read, a dead connection or a
/// corrupt block is retried — first on a fresh connection to the same endpoint, then on the next endpoint — and never
/// used. Thread-safe: many fetches may be in flight.
/// </summary>
public sealed class PoolSource : IWeightSource
{
    private readonly string[] _endpoints;
    private readonly string? _token;
    private readonly FabricClientOptions _options;
    private readonly CatalogReply _reference;
    private readonly Dictionary<string, DenseTensorInfo> _dense;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private PoolClient? _client;
    private int _generation;
    private int _endpointIndex;
    private long _retries;
    private long _corrupt;
    private long _reconnects;

    private PoolSource(string[] endpoints, string? token, FabricClientOptions options, PoolClient first, int index)
    {
        _endpoints = endpoints;
        _token = token;
        _options = options;
        _client = first;
        _endpointIndex = index;
        _reference = first.Catalog;
        Config = _reference.Model;
        var e = _reference.Experts[0];
        var slotBytes = ExpertSlotLayout.AlignUp(_reference.Experts.Max(x => x.Length), NativeBuffer.PageBytes);
        ExpertLayout = new ExpertSlotLayout(slotBytes, WeightTypes.Parse(e.Gate.Dtype.SafetensorsName()), Config.HiddenSize, Config.IntermediateSize,
            e.Gate.Offset, e.Up.Offset, e.Down.Offset);
        foreach (var x in _reference.Experts)
        {
            if (x.Gate.Offset != e.Gate.Offset || x.Up.Offset != e.Up.Offset || x.Down.Offset != e.Down.Offset)
                throw new FabricException($"The pool at {endpoints[index]} packs expert ({x.Layer}, {x.Expert}) differently from expert (0, 0); the engine needs one layout for every slot.");
        }
        _dense = _reference.Dense.ToDictionary(d => d.Name, d => new DenseTensorInfo(d.Name, d.Shape, d.Dtype, d.Length), StringComparer.Ordinal);
    }

    /// <summary>
    /// Connects to the first endpoint that answers (in order), authenticates with <paramref name="token"/> and reads
    /// the catalog. Throws <see cref="FabricException"/> naming every endpoint when none answers.
    /// </summary>
    public static async Task<PoolSource> ConnectAsync(IReadOnlyList<string> endpoints, string? token, FabricClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (endpoints.Count == 0)
            throw new FabricException("No pool endpoint was given; pass --pool URI (more than once for failover).");
        options ??= new FabricClientOptions { ConnectTimeout = TimeSpan.FromSeconds(3), OperationTimeout = TimeSpan.FromSeconds(10) };
        var errors = new List<string>();
        for (var i = 0; i < endpoints.Count; i++)
        {
            try
            {
                var client = await PoolClient.ConnectAsync(endpoints[i], token, options, cancellationToken).ConfigureAwait(false);
                return new PoolSource([.. endpoints], token, options, client, i);
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

    public ModelConfig Config { get; }

    public ExpertSlotLayout ExpertLayout { get; }

    public IReadOnlyDictionary<string, DenseTensorInfo> DenseTensors => _dense;

    public string TransportName => FabricEndpoint.Parse(_endpoints[_endpointIndex]).Scheme;

    /// <summary>Reads that were repeated (failed status, dead connection or bad checksum).</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Blocks whose checksum did not match (never used).</summary>
    public long CorruptBlocks => Interlocked.Read(ref _corrupt);

    /// <summary>Connections replaced after a failure (to the same or another endpoint).</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>The endpoint reads go to now.</summary>
    public string CurrentEndpoint => _endpoints[_endpointIndex];

    public async ValueTask ReadDenseAsync(string name, Memory<byte> destination, CancellationToken cancellationToken)
    {
        var reference = _reference.FindDense(name) ?? throw new FabricException($"The pool's catalog has no dense tensor {name}.");
        await ReadVerifiedAsync(PoolBlock.Dense(name), reference.Checksum, destination[..checked((int)reference.Length)], cancellationToken).ConfigureAwait(false);
    }

    public ValueTask<long> FetchExpertAsync(ExpertKey key, Memory<byte> staging, CancellationToken cancellationToken)
    {
        var reference = _reference.GetExpert(key.Layer, key.Expert);
        return ReadVerifiedAsync(PoolBlock.Expert(key), reference.Checksum, staging[..checked((int)reference.Length)], cancellationToken);
    }

    private async ValueTask<long> ReadVerifiedAsync(PoolBlock block, ulong checksum, Memory<byte> destination, CancellationToken cancellationToken)
    {
        long moved = 0;
        var attempts = (2 * _endpoints.Length) + 2;
        var last = "no endpoint could be reached";
        for (var attempt = 0; attempt < attempts; attempt++)
        {
            if (attempt > 0)
                Interlocked.Increment(ref _retries);
            var (client, generation) = await CurrentAsync(cancellationToken).ConfigureAwait(false);
            if (client is null)
                break;
            var where = block.Locate(client.Catalog);
            if (where is not { } w || w.Length != destination.Length)
            {
                last = $"{client.Transport.Endpoint} serves a different model";
                await InvalidateAsync(generation, moveOn: true).ConfigureAwait(false);
                continue;
            }
            var region = client.Catalog.GetRegion(w.Region);
            var (status, good) = await ReadAndHashAsync(client.Transport, w.Region, region.Key, w.Offset, destination, checksum, cancellationToken).ConfigureAwait(false);
            if (status == ReadStatus.Ok)
            {
                moved += destination.Length;
                if (good)
                    return moved;
                Interlocked.Increment(ref _corrupt);
                last = $"the block read from {client.Transport.Endpoint} failed its checksum";
                // A second bad copy from the same endpoint moves on to the next one.
                if (attempt % 2 == 1)
                    await InvalidateAsync(generation, moveOn: true).ConfigureAwait(false);
                continue;
            }
            last = $"{client.Transport.Endpoint}: {status.Describe()}";
            await InvalidateAsync(generation, moveOn: status is not (ReadStatus.PeerGone or ReadStatus.TimedOut)).ConfigureAwait(false);
        }
        throw new FabricException($"Could not fetch {block} from any pool endpoint ({string.Join(", ", _endpoints)}): {last}.");
    }

    /// <summary>Bytes per read when a block is split so that hashing each piece overlaps the arrival of the next.</summary>
    private const int ChunkBytes = 1 << 20;

    /// <summary>
    /// Issues the block as 1 MiB reads all at once and hashes each piece as soon as it (and those before it) arrived,
    /// while it is still in cache: one pass over memory instead of a read and a separate verify pass.
    /// </summary>
    private static async ValueTask<(ReadStatus Status, bool ChecksumOk)> ReadAndHashAsync(IFabricClient transport, uint region, ulong key, long offset,
        Memory<byte> destination, ulong checksum, CancellationToken cancellationToken)
    {
        var chunks = (destination.Length + ChunkBytes - 1) / ChunkBytes;
        var pending = System.Buffers.ArrayPool<ValueTask<ReadStatus>>.Shared.Rent(chunks);
        var hash = new XxHash64();
        var status = ReadStatus.Ok;
        try
        {
            for (var i = 0; i < chunks; i++)
            {
                var start = i * ChunkBytes;
                var length = Math.Min(ChunkBytes, destination.Length - start);
                pending[i] = transport.ReadAsync(new ReadRequest(region, key, offset + start, destination.Slice(start, length)), cancellationToken);
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
        }
        finally
        {
            System.Buffers.ArrayPool<ValueTask<ReadStatus>>.Shared.Return(pending, clearArray: true);
        }
        return (status, status == ReadStatus.Ok && hash.GetCurrentHashAsUInt64() == checksum);
    }

    private async ValueTask<(PoolClient? Client, int Generation)> CurrentAsync(CancellationToken cancellationToken)
    {
        var client = Volatile.Read(ref _client);
        if (client is not null && client.Transport.IsConnected)
            return (client, Volatile.Read(ref _generation));
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_client is not null && _client.Transport.IsConnected)
                return (_client, _generation);
            if (_client is not null)
            {
                await _client.DisposeAsync().ConfigureAwait(false);
                _client = null;
                _generation++;
            }
            // Reconnect: the same endpoint first (a restarted pool), then each other one in turn.
            for (var i = 0; i < _endpoints.Length; i++)
            {
                var index = (_endpointIndex + i) % _endpoints.Length;
                try
                {
                    _client = await PoolClient.ConnectAsync(_endpoints[index], _token, _options, cancellationToken).ConfigureAwait(false);
                    _endpointIndex = index;
                    _reconnects++;
                    return (_client, _generation);
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
            if (_generation != generation || _client is null)
                return;
            await _client.DisposeAsync().ConfigureAwait(false);
            _client = null;
            _generation++;
            if (moveOn)
                _endpointIndex = (_endpointIndex + 1) % _endpoints.Length;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
            await _client.DisposeAsync().ConfigureAwait(false);
        _client = null;
        _gate.Dispose();
    }
}

/// <summary>
/// The block a read asks the pool for — an expert or a dense tensor — found afresh in each endpoint's catalog. A value,
/// so that a fetch allocates no closure and formats no description unless it finally fails.
/// </summary>
internal readonly record struct PoolBlock(ExpertKey Key, string? DenseName)
{
    public static PoolBlock Expert(ExpertKey key) => new(key, null);

    public static PoolBlock Dense(string name) => new(default, name);

    /// <summary>Where <paramref name="catalog"/> places the block, or null when it has no such block.</summary>
    public (uint Region, long Offset, long Length)? Locate(CatalogReply catalog) =>
        DenseName is { } name
            ? catalog.FindDense(name) is { } d ? (d.RegionId, d.Offset, d.Length) : null
            : catalog.GetExpert(Key.Layer, Key.Expert) is { } x ? (x.RegionId, x.Offset, x.Length) : null;

    public override string ToString() => DenseName is { } name ? $"dense tensor {name}" : $"expert {Key.Layer}/{Key.Expert}";
}
