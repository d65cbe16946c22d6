namespace Fabric.Sim.Routing;

/// <summary>A path through the topology as directed channels, its one-way latency and its narrowest channel (bytes/s).</summary>
public sealed record Route(int From, int To, int[] Channels, long LatencyNs, double BottleneckBandwidth);
