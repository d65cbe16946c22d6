using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Rdma;

/// <summary>Builds the sockaddr_in / sockaddr_in6 that rdma_cm takes.</summary>
internal static class SocketAddresses
{
    public static unsafe SockAddrIn6 From(IPAddress address, int port)
    {
        var native = default(SockAddrIn6);
        native.Port = BinaryPrimitives.ReverseEndianness((ushort)port);
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            native.Family = SocketConstants.AfInet;
            Span<byte> bytes = stackalloc byte[4];
            address.TryWriteBytes(bytes, out _);
            native.Addr4 = BitConverter.ToUInt32(bytes);
        }
        else
        {
            native.Family = SocketConstants.AfInet6;
            address.TryWriteBytes(new Span<byte>(native.Addr6, 16), out _);
            native.ScopeId = (uint)address.ScopeId;
        }
        return native;
    }
}
