using Etcdserverpb;
using Fabric.Common;
using Fabric.Transport;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Fabric.Pool.Protocol.Discovery;

/// <summary>
/// The pools of one model as etcd lists them, kept current by a watch: each registration's holder set per expert
/// (<see cref="ShardPlacement"/>), ordered best first — a pool on this host through its shm endpoint, then the least
/// loaded. The first fingerprint in use is kept for the directory's lifetime: a pool registering the same model name
/// with another fingerprint is refused (said once) and never used. When etcd stops answering, the pools already
/// known stay in use (said once) and the watch is re-established in the background.
/// </summary>
public sealed class PoolDirectory : IPoolRouter, IAsyncDisposable
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    private readonly EtcdAddress _address;
    private readonly GrpcChannel _channel;
    private readonly Action<string> _say;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<string, PoolRegistration> _pools = new(StringComparer.Ordinal);
    private readonly HashSet<string> _refused = new(StringComparer.Ordinal);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Snapshot _snapshot = Snapshot.Empty;
    private string? _fingerprint;
    private Task _watch = Task.CompletedTask;
    private bool _etcdDown;
    private (int Layers, int Experts) _shape;

    private PoolDirectory(EtcdAddress address, Action<string> say)
    {
        _address = address;
        _say = say;
        _channel = GrpcChannel.ForAddress(address.Endpoint);
    }

    /// <summary>
    /// Reads the model's registrations and starts watching them. <paramref name="say"/> receives the one-line notices
    /// (a refused pool, etcd lost and found). etcd not answering at all is a <see cref="FabricException"/>.
    /// </summary>
    public static async Task<PoolDirectory> OpenAsync(EtcdAddress address, Action<string> say, CancellationToken cancellationToken = default)
    {
        if (address.Model is null)
            throw new ArgumentException("The address names no model.", nameof(address));
        var directory = new PoolDirectory(address, say);
        try
        {
            var revision = await directory.LoadAsync(cancellationToken).ConfigureAwait(false);
            directory._watch = Task.Run(() => directory.WatchLoopAsync(revision));
            return directory;
        }
        catch (RpcException e)
        {
            await directory.DisposeAsync().ConfigureAwait(false);
            throw new FabricException($"etcd at {address.Endpoint.Authority} does not answer; start it or fix --discover.", e);
        }
    }

    public string Source => _address.ToString();

    /// <summary>The fingerprint of the pools in use (null until one registered).</summary>
    public string? Fingerprint
    {
        get
        {
            lock (_gate)
                return _fingerprint;
        }
    }

    /// <summary>The registrations in use now (refused ones left out).</summary>
    public IReadOnlyList<PoolRegistration> Registrations => Volatile.Read(ref _snapshot).Registrations;

    public IReadOnlyList<FabricEndpoint> Pools => Volatile.Read(ref _snapshot).Endpoints;

    public Task Changed
    {
        get
        {
            lock (_gate)
                return _changed.Task;
        }
    }

    public IReadOnlyList<FabricEndpoint> Holders(int layer, int expert) => Volatile.Read(ref _snapshot).Holders(layer, expert);

    public void Tabulate(int layers, int expertsPerLayer)
    {
        lock (_gate)
        {
            _shape = (layers, expertsPerLayer);
            Volatile.Write(ref _snapshot, Snapshot.Build([.. _snapshot.Registrations], _shape));
        }
    }

    /// <summary>Reads every registration of the model; returns the store's revision.</summary>
    private async Task<long> LoadAsync(CancellationToken cancellationToken)
    {
        var kv = new KV.KVClient(_channel);
        var prefix = PoolRegistration.ModelPrefix(_address.Model!);
        var reply = await kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8(PrefixEnd(prefix)) },
            deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
        lock (_gate)
        {
            _pools.Clear();
            var parsed = new List<(long Created, PoolRegistration Registration)>();
            foreach (var kvp in reply.Kvs)
            {
                if (TryParse(kvp.Value.Span, kvp.Key.ToStringUtf8()) is { } registration)
                    parsed.Add((kvp.CreateRevision, registration));
            }
            // The fingerprint most pools agree on (the oldest registration breaks ties) is the model's, unless one is already in use.
            _fingerprint ??= parsed.GroupBy(p => p.Registration.Fingerprint, StringComparer.Ordinal)
                .OrderByDescending(g => g.Count()).ThenBy(g => g.Min(p => p.Created)).Select(g => g.Key).FirstOrDefault();
            foreach (var (_, registration) in parsed.OrderBy(p => p.Created))
                Accept(registration);
            Publish();
        }
        return reply.Header.Revision;
    }

    private async Task WatchLoopAsync(long revision)
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                if (_etcdDown)
                    revision = await LoadAsync(token).ConfigureAwait(false);
                await WatchAsync(revision + 1, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception) when (!token.IsCancellationRequested)
            {
                // Any failure of the watch (etcd gone, the stream cut, a compaction) is handled alike: keep the pools known, watch again.
            }
            if (!_etcdDown)
            {
                _etcdDown = true;
                _say($"etcd at {_address.Endpoint.Authority} stopped answering; reading on from the {Pools.Count} pool(s) already known.");
            }
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task WatchAsync(long fromRevision, CancellationToken cancellationToken)
    {
        var prefix = PoolRegistration.ModelPrefix(_address.Model!);
        using var call = new Watch.WatchClient(_channel).Watch(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8(PrefixEnd(prefix)), StartRevision = fromRevision, ProgressNotify = true },
        }, cancellationToken).ConfigureAwait(false);
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            var response = call.ResponseStream.Current;
            if (response.Canceled || response.CompactRevision > 0)
                throw new InvalidOperationException("The watch was cancelled by etcd.");
            if (_etcdDown && response.Created)
            {
                _etcdDown = false;
                _say($"etcd at {_address.Endpoint.Authority} answers again.");
            }
            if (response.Events.Count == 0)
                continue;
            lock (_gate)
            {
                foreach (var e in response.Events)
                {
                    var key = e.Kv.Key.ToStringUtf8();
                    if (e.Type == Mvccpb.Event.Types.EventType.Delete)
                    {
                        _pools.Remove(key);
                        _refused.Remove(key);
                    }
                    else if (TryParse(e.Kv.Value.Span, key) is { } registration)
                    {
                        _fingerprint ??= registration.Fingerprint;
                        Accept(registration);
                    }
                }
                Publish();
            }
        }
        throw new InvalidOperationException("The watch ended.");
    }

    private PoolRegistration? TryParse(ReadOnlySpan<byte> value, string key)
    {
        try
        {
            return PoolRegistration.FromJson(value, key);
        }
        catch (FabricException e)
        {
            if (_refused.Add(key))
                _say(e.Message);
            return null;
        }
    }

    /// <summary>Takes a registration in, or refuses it (once) when its fingerprint is not the model's. Under the lock.</summary>
    private void Accept(PoolRegistration registration)
    {
        if (registration.Fingerprint != _fingerprint)
        {
            if (_refused.Add(registration.Key))
                _say($"pool {registration.PoolId} registered model {registration.Model} with fingerprint {registration.Fingerprint}, but the pools in use serve fingerprint {_fingerprint}; it is not used.");
            return;
        }
        _pools[registration.Key] = registration;
    }

    /// <summary>Builds the new snapshot and wakes whoever waits for a change. Under the lock.</summary>
    private void Publish()
    {
        Volatile.Write(ref _snapshot, Snapshot.Build([.. _pools.Values], _shape));
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    private static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _watch.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or RpcException)
        {
        }
        _channel.Dispose();
        _stop.Dispose();
    }

    /// <summary>An immutable view: the pools and, per expert, its holders best first.</summary>
    private sealed class Snapshot
    {
        public static readonly Snapshot Empty = new([], [], [], 0);


        private readonly FabricEndpoint[][] _holders;
        private readonly int _expertsPerLayer;

        private Snapshot(PoolRegistration[] registrations, FabricEndpoint[] endpoints, FabricEndpoint[][] holders, int expertsPerLayer)
        {
            Registrations = registrations;
            Endpoints = endpoints;
            _holders = holders;
            _expertsPerLayer = expertsPerLayer;
        }

        public IReadOnlyList<PoolRegistration> Registrations { get; }

        public FabricEndpoint[] Endpoints { get; }

        public IReadOnlyList<FabricEndpoint> Holders(int layer, int expert)
        {
            if (expert < 0)
                return Endpoints;
            var index = (layer * _expertsPerLayer) + expert;
            if (expert < _expertsPerLayer && (uint)index < (uint)_holders.Length)
                return _holders[index];
            // Beyond the table (the model's shape is not known here): compute it.
            return [.. Endpoints.Where((_, i) => Registrations[i].Holds(layer, expert))];
        }

        /// <summary>Orders the pools (same host first, then least loaded) and tabulates the holders of every expert of the model's shape.</summary>
        public static Snapshot Build(List<PoolRegistration> pools, (int Layers, int Experts) shape)
        {
            var host = Environment.MachineName;
            var ordered = pools.Select(p => (Registration: p, Endpoint: Preferred(p, host)))
                .Where(p => p.Endpoint is not null)
                .OrderBy(p => p.Registration.Host == host && p.Endpoint!.Scheme == "shm" ? 0 : 1)
                .ThenBy(p => p.Registration.Load)
                .ThenBy(p => p.Registration.PoolId, StringComparer.Ordinal)
                .ToArray();
            var registrations = ordered.Select(p => p.Registration).ToArray();
            var endpoints = ordered.Select(p => p.Endpoint!).ToArray();
            var (Layers, Experts) = shape;
            var holders = new FabricEndpoint[Layers * Experts][];
            for (var l = 0; l < Layers; l++)
            {
                for (var e = 0; e < Experts; e++)
                {
                    var list = new List<FabricEndpoint>(2);
                    for (var i = 0; i < registrations.Length; i++)
                    {
                        if (registrations[i].Holds(l, e))
                            list.Add(endpoints[i]);
                    }
                    holders[(l * Experts) + e] = [.. list];
                }
            }
            return new Snapshot(registrations, endpoints, holders, Experts);
        }

        /// <summary>The endpoint an engine here reads a pool through: its shm endpoint on the same host, else the first other one.</summary>
        private static FabricEndpoint? Preferred(PoolRegistration pool, string host)
        {
            FabricEndpoint? other = null;
            foreach (var text in pool.Endpoints)
            {
                if (!FabricEndpoint.TryParse(text, out var endpoint, out _))
                    continue;
                if (endpoint.Scheme == "shm")
                {
                    if (pool.Host == host)
                        return endpoint;
                    continue;
                }
                other ??= endpoint;
            }
            return other;
        }
    }
}
