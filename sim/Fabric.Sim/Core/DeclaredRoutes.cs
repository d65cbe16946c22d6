namespace Fabric.Sim.Core;

/// <summary>
/// The routes a network was told of up front, each with the channels that can constrain it
/// (<see cref="RedundantChannels"/>); before any is declared, every channel of a route counts.
/// </summary>
internal sealed class DeclaredRoutes
{
    private Dictionary<int[], int[]>? _constraining;

    public void Declare(IReadOnlyCollection<int[]> routes, IReadOnlyList<double> capacity) =>
        _constraining = RedundantChannels.Prune(routes, capacity);

    /// <summary>The channels a transfer on <paramref name="route"/> is modelled on.</summary>
    public int[] ChannelsOf(int[] route) =>
        _constraining is null ? route
        : _constraining.TryGetValue(route, out var channels) ? channels
        : throw new InvalidOperationException("A flow was started on a route that was not declared.");
}
