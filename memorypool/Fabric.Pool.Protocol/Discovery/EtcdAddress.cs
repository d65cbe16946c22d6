using Fabric.Common;

namespace Fabric.Pool.Protocol.Discovery;

/// <summary>Where etcd answers (<c>http://HOST:PORT</c>) and, for engines, which model's pools to use.</summary>
public sealed record EtcdAddress(Uri Endpoint, string? Model)
{
    /// <summary>Parses <c>http://HOST:PORT</c> (pools, <c>pool ls</c>); one sentence when it is not one.</summary>
    public static EtcdAddress ParseServer(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.IsDefaultPort && !text.Contains(':', StringComparison.Ordinal) || uri.AbsolutePath != "/")
            throw new FabricException($"--etcd '{text}' is not an etcd address; expected http://HOST:PORT, such as http://127.0.0.1:2379.");
        return new EtcdAddress(new Uri($"http://{uri.Authority}"), null);
    }

    /// <summary>Parses <c>etcd://HOST:PORT/MODEL</c> (engines); one sentence when it is not one.</summary>
    public static EtcdAddress ParseDiscover(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != "etcd" || uri.Port <= 0 || uri.AbsolutePath.Trim('/').Length == 0 || uri.AbsolutePath.Trim('/').Contains('/', StringComparison.Ordinal))
            throw new FabricException($"--discover '{text}' is not a discovery address; expected etcd://HOST:PORT/MODEL, such as etcd://127.0.0.1:2379/mixtral.");
        return new EtcdAddress(new Uri($"http://{uri.Authority}"), uri.AbsolutePath.Trim('/'));
    }

    public override string ToString() => Model is null ? Endpoint.GetLeftPart(UriPartial.Authority) : $"etcd://{Endpoint.Authority}/{Model}";
}
