namespace Fabric.Transport.Rdma;

/// <summary>
/// The <c>--transport auto|rdma|tcp|shm</c> option of the pool and engine programs: turns the choice into an endpoint,
/// picking rdma for <c>auto</c> when this machine has an active RDMA port and tcp otherwise, and saying which in one line.
/// </summary>
public static class TransportSelection
{
    /// <summary>The values the option accepts.</summary>
    public static readonly IReadOnlyList<string> Choices = ["auto", "rdma", "tcp", "shm"];

    /// <summary>
    /// The endpoint for <paramref name="transport"/> at <paramref name="host"/>:<paramref name="port"/>
    /// (<paramref name="shmPath"/>, such as /dev/shm/fabric, for shm). <paramref name="log"/> receives one line naming
    /// the transport chosen and why. An unknown choice, or shm without a path, throws <see cref="EndpointException"/>.
    /// </summary>
    public static FabricEndpoint Resolve(string transport, string host, int port, Action<string>? log = null, string? shmPath = null)
    {
        var choice = (transport ?? "").Trim().ToLowerInvariant();
        switch (choice)
        {
            case "tcp":
            case "rdma":
                log?.Invoke($"transport: {choice} (asked for)");
                return new FabricEndpoint(choice, host, port, "");
            case "shm":
                if (string.IsNullOrEmpty(shmPath))
                    throw new EndpointException("The shm transport needs a shared-memory path such as /dev/shm/fabric.");
                log?.Invoke("transport: shm (asked for)");
                return FabricEndpoint.Parse($"shm://{shmPath}");
            case "auto":
                var rdma = RdmaDevices.Probe();
                if (rdma.IsUsable)
                {
                    log?.Invoke($"transport: rdma, chosen automatically because {rdma.Reason}");
                    return new FabricEndpoint("rdma", host, port, "");
                }
                log?.Invoke($"transport: tcp, chosen automatically because {rdma.Reason}");
                return new FabricEndpoint("tcp", host, port, "");
            default:
                throw new EndpointException($"'{transport}' is not a transport; expected one of {string.Join(", ", Choices)}.");
        }
    }

    /// <summary>
    /// Applies <paramref name="transport"/> to an endpoint given as a URI: for a tcp:// or rdma:// endpoint the scheme
    /// becomes the one chosen (auto picks as in <see cref="Resolve(string, string, int, Action{string}?, string?)"/>);
    /// any other endpoint is returned as it is.
    /// </summary>
    public static FabricEndpoint Apply(string transport, FabricEndpoint endpoint, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (endpoint.Scheme is not ("tcp" or "rdma"))
            return endpoint;
        return Resolve(transport, endpoint.Host, endpoint.Port, log, shmPath: null);
    }
}
