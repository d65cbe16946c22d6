using Fabric.Transport;

namespace Fabric.Pool.Protocol.Discovery;

/// <summary>
/// Tells <see cref="PoolReader"/> which pools hold a block, best first, as the set of pools changes. Implementations
/// answer from an immutable snapshot, so that asking allocates nothing.
/// </summary>
public interface IPoolRouter
{
    /// <summary>One endpoint per pool that holds expert (<paramref name="layer"/>, <paramref name="expert"/>), best first; every pool for a dense tensor (<paramref name="expert"/> -1).</summary>
    IReadOnlyList<FabricEndpoint> Holders(int layer, int expert);

    /// <summary>Precomputes the holders of every expert of a model of this shape, so that <see cref="Holders"/> is a lookup.</summary>
    void Tabulate(int layers, int expertsPerLayer);

    /// <summary>Every pool in use now, one endpoint each.</summary>
    IReadOnlyList<FabricEndpoint> Pools { get; }

    /// <summary>Completes when the set of pools changes next.</summary>
    Task Changed { get; }

    /// <summary>Where the pools come from, for messages ("etcd://127.0.0.1:2379/tiny").</summary>
    string Source { get; }
}
