using Fabric.Common;
namespace Fabric.Transport.Rdma;

/// <summary>A verbs or connection-manager call failed; the message names the call and the errno.</summary>
public sealed class RdmaException : FabricException
{
    public RdmaException(string call, int errno, string message) : base(message)
    {
        Call = call;
        Errno = errno;
    }

    /// <summary>The C function that failed, e.g. "ibv_reg_mr".</summary>
    public string Call { get; }

    /// <summary>The errno value it reported (0 when it reported none).</summary>
    public int Errno { get; }

    /// <summary>The symbolic name of <see cref="Errno"/>, e.g. "ENOSYS".</summary>
    public string ErrnoName => Verbs.ErrnoName(Errno);
}
