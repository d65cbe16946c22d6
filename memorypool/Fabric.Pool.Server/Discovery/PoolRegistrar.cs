using Etcdserverpb;
using Fabric.Common;
using Fabric.Pool.Protocol.Discovery;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Fabric.Pool.Server.Discovery;

/// <summary>
/// Keeps a pool registered in etcd: grants a lease of <see cref="Ttl"/>, puts the registration under it, keeps the
/// lease alive every third of the TTL and rewrites the registration when the load changes. A lease that expired
/// (etcd restarted, a long pause) is granted anew and the registration put again. <see cref="RevokeAsync"/> removes
/// the registration at once (the pool calls it on SIGTERM, before draining), so engines move away without waiting for
/// the lease to run out.
/// </summary>
public sealed class PoolRegistrar : IAsyncDisposable
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    private readonly GrpcChannel _channel;
    private readonly Func<int> _load;
    private readonly Action<string> _say;
    private readonly CancellationTokenSource _stop = new();
    private PoolRegistration _registration;
    private long _lease;
    private Task _loop = Task.CompletedTask;

    private PoolRegistrar(EtcdAddress etcd, PoolRegistration registration, TimeSpan ttl, Func<int> load, Action<string> say)
    {
        Etcd = etcd;
        _registration = registration;
        Ttl = ttl;
        _load = load;
        _say = say;
        _channel = GrpcChannel.ForAddress(etcd.Endpoint);
    }

    public EtcdAddress Etcd { get; }

    /// <summary>The lease's time to live.</summary>
    public TimeSpan Ttl { get; }

    public PoolRegistration Registration => _registration;

    /// <summary>
    /// Registers <paramref name="registration"/> and starts keeping it alive. etcd not answering, or another live pool
    /// registered under the same id, is one sentence (<see cref="FabricException"/>).
    /// </summary>
    public static async Task<PoolRegistrar> StartAsync(EtcdAddress etcd, PoolRegistration registration, TimeSpan ttl, Func<int> load, Action<string> say, CancellationToken cancellationToken)
    {
        var registrar = new PoolRegistrar(etcd, registration, ttl, load, say);
        try
        {
            await registrar.RegisterAsync(refuseTaken: true, cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            await registrar.DisposeAsync().ConfigureAwait(false);
            throw new FabricException($"etcd at {etcd.Endpoint.Authority} does not answer; start it or fix --etcd.", e);
        }
        catch
        {
            await registrar.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        registrar._loop = Task.Run(registrar.KeepAliveLoopAsync);
        return registrar;
    }

    private async Task RegisterAsync(bool refuseTaken, CancellationToken cancellationToken)
    {
        var lease = await new Lease.LeaseClient(_channel).LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)Math.Ceiling(Ttl.TotalSeconds) },
            deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
        var key = ByteString.CopyFromUtf8(_registration.Key);
        var value = ByteString.CopyFrom(_registration.ToJson());
        // Put only if no live pool holds the key: two pools under one id would hide each other.
        var txn = new TxnRequest();
        if (refuseTaken)
            txn.Compare.Add(new Compare { Key = key, Target = Compare.Types.CompareTarget.Version, Result = Compare.Types.CompareResult.Equal, Version = 0 });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = key, Value = value, Lease = lease.ID } });
        var reply = await new KV.KVClient(_channel).TxnAsync(txn, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
        if (!reply.Succeeded)
        {
            await new Lease.LeaseClient(_channel).LeaseRevokeAsync(new LeaseRevokeRequest { ID = lease.ID }, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
            throw new FabricException($"A live pool is already registered as {_registration.PoolId} for model {_registration.Model} at {Etcd}; give another --pool-id.");
        }
        Volatile.Write(ref _lease, lease.ID);
    }

    private async Task KeepAliveLoopAsync()
    {
        var token = _stop.Token;
        var period = Ttl / 3;
        var lost = false;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, token).ConfigureAwait(false);
                var load = _load();
                if (load != _registration.Load)
                {
                    _registration = _registration with { Load = load };
                    await new KV.KVClient(_channel).PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(_registration.Key), Value = ByteString.CopyFrom(_registration.ToJson()), Lease = _lease },
                        deadline: DateTime.UtcNow + CallTimeout, cancellationToken: token);
                }
                using var call = new Lease.LeaseClient(_channel).LeaseKeepAlive(deadline: DateTime.UtcNow + CallTimeout, cancellationToken: token);
                await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = _lease }, token).ConfigureAwait(false);
                await call.RequestStream.CompleteAsync().ConfigureAwait(false);
                var alive = await call.ResponseStream.MoveNext(token).ConfigureAwait(false) && call.ResponseStream.Current.TTL > 0;
                if (!alive)
                    await RegisterAsync(refuseTaken: false, token).ConfigureAwait(false);
                if (lost)
                    _say($"etcd at {Etcd.Endpoint.Authority} answers again; registration renewed.");
                lost = false;
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception) when (!token.IsCancellationRequested)
            {
                if (!lost)
                    _say($"etcd at {Etcd.Endpoint.Authority} stopped answering; the pool keeps serving and will register again when it answers.");
                lost = true;
            }
        }
    }

    /// <summary>Stops the keep-alive and revokes the lease, which deletes the registration. Failures are ignored (the lease then runs out).</summary>
    public async Task RevokeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        var lease = Interlocked.Exchange(ref _lease, 0);
        if (lease == 0)
            return;
        try
        {
            await new Lease.LeaseClient(_channel).LeaseRevokeAsync(new LeaseRevokeRequest { ID = lease }, deadline: DateTime.UtcNow + CallTimeout);
        }
        catch (RpcException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await RevokeAsync().ConfigureAwait(false);
        _channel.Dispose();
        _stop.Dispose();
    }
}
