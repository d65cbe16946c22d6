namespace Fabric.Engine.Paging;

/// <summary>Where the pager is when it asks a policy for a victim.</summary>
/// <param name="CurrentLayer">The layer being computed (or the last one begun).</param>
/// <param name="AccessIndex">The number of expert uses recorded so far (the position in the access sequence).</param>
public readonly record struct EvictionContext(int CurrentLayer, long AccessIndex);
