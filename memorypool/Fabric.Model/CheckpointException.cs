using Fabric.Common;

namespace Fabric.Model;

/// <summary>A checkpoint or config that cannot be used; the message is one sentence naming the file and the tensor.</summary>
public sealed class CheckpointException : FabricException
{
    public CheckpointException(string message) : base(message) { }
    public CheckpointException(string message, Exception inner) : base(message, inner) { }
}
