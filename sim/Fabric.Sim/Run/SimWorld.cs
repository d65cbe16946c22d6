using Fabric.Sim.Clock;
using Fabric.Sim.Compute;
using Fabric.Sim.Network;
using Fabric.Sim.Network.Fifo;
using Fabric.Sim.Network.MaxMin;
using Fabric.Sim.Routing;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Run;

/// <summary>A topology brought to life: the event loop, the flow network over its channels, and its routes.</summary>
public sealed class SimWorld
{
    private readonly Dictionary<(Workload, double, double), LayerCost> _costs = [];

    /// <param name="topology">The machine(s) to model.</param>
    /// <param name="sharing">How transfers share the links: exact max-min (<see cref="FlowNetwork"/>) or first come, first
    /// served (<see cref="FifoNetwork"/>).</param>
    /// <param name="rateQuantumNs">See <see cref="FlowNetwork"/>: 0 recomputes fair shares exactly at every change.</param>
    public SimWorld(Topology.Topology topology, Sharing sharing = Sharing.MaxMin, long rateQuantumNs = 0)
    {
        Topology = topology;
        Simulation = new Simulation();
        var capacities = new double[topology.ChannelCount];
        foreach (var l in topology.Links)
        {
            capacities[2 * l.Id] = l.Bandwidth;
            capacities[(2 * l.Id) + 1] = l.Bandwidth;
        }
        Network = sharing == Sharing.Fifo ? new FifoNetwork(Simulation, capacities) : new FlowNetwork(Simulation, capacities, rateQuantumNs);
        Router = new Router(topology);
    }

    public Topology.Topology Topology { get; }
    public Simulation Simulation { get; }
    public IFlowNetwork Network { get; }
    public Router Router { get; }

    /// <summary>The cost of <paramref name="workload"/>'s layer visits on <paramref name="device"/>: one table for every
    /// device of the same speed, so that a thousand engines look their visits up in one.</summary>
    public LayerCost CostOn(Workload workload, TopologyNode device)
    {
        var key = (workload, device.PeakFlops, device.MemoryBandwidth);
        if (!_costs.TryGetValue(key, out var cost))
            _costs[key] = cost = new LayerCost(workload.Model, device, workload.ContextTokens, workload.LayerOverheadNs, tableRows: workload.Batch);
        return cost;
    }
}
