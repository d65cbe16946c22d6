using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Paging;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Pool.Protocol.Discovery;
using Fabric.Transport;

namespace Fabric.Engine.Sources;

/// <summary>
/// Weights from one or more pools through the protocol's <see cref="PoolReader"/>, which verifies every block
/// and fails over between endpoints; this adds what the engine needs to know of the bank: one slot layout for
/// every expert and the dense tensors. Thread-safe: many fetches may be in flight.
/// </summary>
public sealed class PoolSource : IWeightSource
{
    private readonly Dictionary<string, DenseTensorInfo> _dense;
    private readonly IAsyncDisposable? _directory;

    private PoolSource(PoolReader reader, IAsyncDisposable? directory = null)
    {
        Reader = reader;
        _directory = directory;
        var catalog = reader.Catalog;
        Config = catalog.Model;
        var e = catalog.Experts[0];
        var slotBytes = ExpertSlotLayout.AlignUp(catalog.Experts.Max(x => x.Length), NativeBuffer.PageBytes);
        ExpertLayout = new ExpertSlotLayout(slotBytes, WeightTypes.Parse(e.Gate.Dtype.SafetensorsName()), Config.HiddenSize, Config.IntermediateSize,
            e.Gate.Offset, e.Up.Offset, e.Down.Offset);
        foreach (var x in catalog.Experts)
        {
            if (x.Gate.Offset != e.Gate.Offset || x.Up.Offset != e.Up.Offset || x.Down.Offset != e.Down.Offset)
                throw new FabricException($"The pool at {reader.CurrentEndpoint} packs expert ({x.Layer}, {x.Expert}) differently from expert (0, 0); the engine needs one layout for every slot.");
        }
        _dense = catalog.Dense.ToDictionary(d => d.Name, d => new DenseTensorInfo(d.Name, d.Shape, d.Dtype, d.Length), StringComparer.Ordinal);
    }

    /// <summary>Connects a <see cref="PoolReader"/> to <paramref name="endpoints"/> (failover order) and reads the bank's layout.</summary>
    public static async Task<PoolSource> ConnectAsync(IReadOnlyList<FabricEndpoint> endpoints, string? token, FabricClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        var reader = await PoolReader.ConnectAsync(endpoints, token, options, cancellationToken).ConfigureAwait(false);
        try
        {
            return new PoolSource(reader);
        }
        catch
        {
            await reader.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Finds the model's pools in etcd (<paramref name="address"/>: etcd://HOST:PORT/MODEL), keeps watching them and
    /// reads each expert from a pool that holds it, failing over between replicas. <paramref name="say"/> gets the
    /// one-line notices (a refused pool, etcd lost).
    /// </summary>
    public static async Task<PoolSource> DiscoverAsync(EtcdAddress address, string? token, Action<string> say, CancellationToken cancellationToken = default)
    {
        var directory = await PoolDirectory.OpenAsync(address, say, cancellationToken).ConfigureAwait(false);
        PoolReader? reader = null;
        try
        {
            reader = await PoolReader.ConnectAsync(directory, token, cancellationToken: cancellationToken).ConfigureAwait(false);
            return new PoolSource(reader, directory);
        }
        catch
        {
            if (reader is not null)
                await reader.DisposeAsync().ConfigureAwait(false);
            await directory.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The reader every fetch goes through: its counters say how many reads were retried or refused.</summary>
    public PoolReader Reader { get; }

    public ModelConfig Config { get; }

    public ExpertSlotLayout ExpertLayout { get; }

    public IReadOnlyDictionary<string, DenseTensorInfo> DenseTensors => _dense;

    public string TransportName => Reader.CurrentEndpoint.Scheme;

    public long Retries => Reader.Retries;

    public long CorruptBlocks => Reader.CorruptBlocks;

    public async ValueTask ReadDenseAsync(string name, Memory<byte> destination, CancellationToken cancellationToken) =>
        await Reader.ReadDenseAsync(name, destination, cancellationToken).ConfigureAwait(false);

    public ValueTask<long> FetchExpertAsync(ExpertKey key, Memory<byte> staging, CancellationToken cancellationToken) =>
        Reader.ReadExpertAsync(key.Layer, key.Expert, staging, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await Reader.DisposeAsync().ConfigureAwait(false);
        if (_directory is not null)
            await _directory.DisposeAsync().ConfigureAwait(false);
    }
}
