using Fabric.Common;

namespace Fabric.Sim.Topology;

/// <summary>A topology or workload file that cannot be used; the message is one sentence naming the problem.</summary>
public sealed class TopologyException : FabricException
{
    public TopologyException(string message) : base(message) { }
    public TopologyException(string message, Exception inner) : base(message, inner) { }
}
