namespace Fabric.Common;

/// <summary>
/// The base of every error Fabric reports to a person. The message is one complete sentence that names the
/// thing at fault (an endpoint, a file, a tensor) and is printed as it is, without a stack trace.
/// </summary>
public class FabricException : Exception
{
    public FabricException(string message) : base(message) { }
    public FabricException(string message, Exception inner) : base(message, inner) { }
}
