using System.Net;
using System.Net.Sockets;

namespace Fabric.Transport;

/// <summary>Turns the host of a network endpoint (tcp://, rdma://) into an address, with one-sentence errors.</summary>
internal static class EndpointAddresses
{
    /// <summary>A literal address as it is; a name through DNS, preferring IPv4.</summary>
    public static async ValueTask<IPAddress> ResolveAsync(FabricEndpoint endpoint, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(endpoint.Host, out var address))
            return address;
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(endpoint.Host, cancellationToken).ConfigureAwait(false);
            return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                ?? throw new EndpointException($"The host of {endpoint} has no address.");
        }
        catch (SocketException e)
        {
            throw new EndpointException($"The host of {endpoint} does not resolve: {e.Message.TrimEnd('.')}.", e);
        }
    }
}
