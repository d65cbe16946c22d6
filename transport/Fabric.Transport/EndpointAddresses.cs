using System.Net;
using System.Net.Sockets;

namespace Fabric.Transport;

/// <summary>Turns the host of a network endpoint (tcp://, rdma://) into an address, with one-sentence errors.</summary>
internal static class EndpointAddresses
{
    /// <summary>A literal address as it is; a name through DNS, preferring IPv4, within <paramref name="timeout"/> where one is given.</summary>
    public static async ValueTask<IPAddress> ResolveAsync(FabricEndpoint endpoint, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        if (IPAddress.TryParse(endpoint.Host, out var address))
            return address;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout is { } within && within > TimeSpan.Zero)
            limit.CancelAfter(within);
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(endpoint.Host, limit.Token).ConfigureAwait(false);
            return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                ?? throw new EndpointException($"The host of {endpoint} has no address.");
        }
        catch (SocketException e)
        {
            throw new EndpointException($"The host of {endpoint} does not resolve: {e.Message.TrimEnd('.')}.", e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new EndpointException($"The host of {endpoint} did not resolve within {timeout!.Value.TotalSeconds:0.#} s.", e);
        }
    }
}
