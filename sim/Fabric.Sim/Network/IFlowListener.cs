namespace Fabric.Sim.Network;

/// <summary>Told when a transfer has delivered its last byte.</summary>
public interface IFlowListener
{
    /// <summary><paramref name="tag"/> is what the starter passed; the flow id may be reused afterwards.</summary>
    void OnFlowCompleted(int flow, long tag);
}
