namespace Fabric.Transport;

/// <summary>
/// A parsed endpoint URI: <c>shm:///dev/shm/NAME</c>, <c>shm:///dev/dax0.0</c>, <c>tcp://HOST:PORT</c>,
/// <c>rdma://HOST:PORT</c>, or <c>sim://NODE</c>. Every URI a user types is parsed here and nowhere else.
/// </summary>
public sealed record FabricEndpoint(string Scheme, string Host, int Port, string Path)
{
    /// <summary>The schemes that take a host and a port.</summary>
    private static readonly string[] NetworkSchemes = ["tcp", "rdma"];

    /// <summary>Parses <paramref name="text"/> or throws an <see cref="EndpointException"/> whose message is one sentence.</summary>
    public static FabricEndpoint Parse(string text) =>
        TryParse(text, out var endpoint, out var error) ? endpoint : throw new EndpointException(error);

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> is one sentence a user can act on.</summary>
    public static bool TryParse(string? text, out FabricEndpoint endpoint, out string error)
    {
        endpoint = null!;
        error = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "The endpoint is empty; expected a URI such as tcp://127.0.0.1:7100 or shm:///dev/shm/fabric.";
            return false;
        }

        var schemeEnd = text.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd <= 0)
        {
            error = $"'{text}' is not an endpoint URI; expected SCHEME://..., such as tcp://127.0.0.1:7100 or shm:///dev/shm/fabric.";
            return false;
        }

        var scheme = text[..schemeEnd].ToLowerInvariant();
        var rest = text[(schemeEnd + 3)..];
        if (scheme == "shm")
        {
            if (!rest.StartsWith('/') || rest.Length < 2 || rest.EndsWith('/'))
            {
                error = $"'{text}' has no absolute file path; expected shm:///dev/shm/NAME or shm:///dev/daxX.Y.";
                return false;
            }
            endpoint = new FabricEndpoint(scheme, "", 0, rest);
            return true;
        }

        if (scheme == "sim")
        {
            if (rest.Length == 0 || rest.Contains('/'))
            {
                error = $"'{text}' does not name a simulated node; expected sim://NODE.";
                return false;
            }
            endpoint = new FabricEndpoint(scheme, rest, 0, "");
            return true;
        }

        if (Array.IndexOf(NetworkSchemes, scheme) < 0)
        {
            error = $"'{text}' uses the unknown scheme '{scheme}'; Fabric speaks shm://, tcp://, rdma:// and sim://.";
            return false;
        }

        rest = rest.TrimEnd('/');
        var colon = rest.LastIndexOf(':');
        var host = colon > 0 ? rest[..colon] : rest;
        if (host.StartsWith('[') && host.EndsWith(']'))
            host = host[1..^1];
        if (colon <= 0 || host.Length == 0)
        {
            error = $"'{text}' has no host and port; expected {scheme}://HOST:PORT.";
            return false;
        }
        if (!int.TryParse(rest[(colon + 1)..], System.Globalization.NumberStyles.None, null, out var port) || port > 65535)
        {
            error = $"'{text}' has an invalid port; expected a number from 0 to 65535.";
            return false;
        }
        endpoint = new FabricEndpoint(scheme, host, port, "");
        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => Scheme switch
    {
        "shm" => $"shm://{Path}",
        "sim" => $"sim://{Host}",
        _ => Host.Contains(':') ? $"{Scheme}://[{Host}]:{Port}" : $"{Scheme}://{Host}:{Port}",
    };
}
