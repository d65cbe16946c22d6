using Fabric.Common;

namespace Fabric.Transport;

/// <summary>A malformed URI, an unknown scheme, a refused connection, a missing shm file or RDMA device.</summary>
public sealed class EndpointException : FabricException
{
    public EndpointException(string message) : base(message) { }
    public EndpointException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The peer closed the connection, died, or broke the protocol; pending operations fail with this.</summary>
public sealed class PeerGoneException : FabricException
{
    public PeerGoneException(string message) : base(message) { }
    public PeerGoneException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The peer answered a control request with an error (for example "unauthorized").</summary>
public sealed class ControlException : FabricException
{
    public ControlException(ControlErrorCode code, string message) : base(message) => Code = code;

    /// <summary>What kind of refusal the peer sent.</summary>
    public ControlErrorCode Code { get; }
}

/// <summary>The kinds of refusal a control reply can carry.</summary>
public enum ControlErrorCode : ushort
{
    Unknown = 0,
    Unauthorized = 1,
    UnknownMessageType = 2,
    MalformedMessage = 3,
    NotFound = 4,
    Internal = 5,
}
