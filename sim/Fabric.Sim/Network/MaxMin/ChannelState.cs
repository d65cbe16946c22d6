namespace Fabric.Sim.Network.MaxMin;

/// <summary>The directed channels of a <see cref="FlowNetwork"/>: capacity, the flows crossing each, the bytes carried.</summary>
internal sealed class ChannelState
{
    public ChannelState(IReadOnlyList<double> capacityBytesPerSecond)
    {
        Count = capacityBytesPerSecond.Count;
        Capacity = new double[Count];
        Flows = new List<int>[Count];
        BytesCarried = new double[Count];
        for (var c = 0; c < Count; c++)
        {
            Capacity[c] = capacityBytesPerSecond[c] / 1e9;
            Flows[c] = [];
        }
    }

    public int Count { get; }

    /// <summary>Bytes per ns.</summary>
    public double[] Capacity { get; }

    /// <summary>The flows crossing each channel, one entry per crossing (a route may cross a channel twice).</summary>
    public List<int>[] Flows { get; }

    /// <summary>Bytes each channel has carried (completed flows only).</summary>
    public double[] BytesCarried { get; }
}
