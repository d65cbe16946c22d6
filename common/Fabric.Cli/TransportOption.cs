using System.CommandLine;
using Fabric.Transport;
using Fabric.Transport.Rdma;

namespace Fabric.Cli;

/// <summary>
/// The <c>--transport auto|rdma|tcp</c> option the pool and engine programs share: it sets the scheme of every
/// tcp:// or rdma:// endpoint they were given, and says on stderr which transport it chose and why.
/// </summary>
public static class TransportOption
{
    /// <summary>The option, describing the endpoints (<paramref name="endpointOption"/>) it rewrites.</summary>
    public static Option<string?> Create(string endpointOption)
    {
        var option = new Option<string?>("--transport")
        {
            Description = $"auto, rdma or tcp: the transport for every tcp:// or rdma:// {endpointOption} endpoint; auto picks rdma where an RDMA device is usable and tcp otherwise, and says which.",
        };
        option.AcceptOnlyFromAmong("auto", "rdma", "tcp");
        return option;
    }

    /// <summary>
    /// Parses <paramref name="endpoints"/> and applies <paramref name="transport"/> (none when it is null); shm
    /// endpoints stay as they are. A malformed URI throws <see cref="EndpointException"/> with one sentence.
    /// </summary>
    public static FabricEndpoint[] Apply(string? transport, string[] endpoints, string program) =>
        [.. endpoints.Select(e => transport is null
            ? FabricEndpoint.Parse(e)
            : TransportSelection.Apply(transport, FabricEndpoint.Parse(e), line => Console.Error.WriteLine($"{program}: {line}")))];
}
