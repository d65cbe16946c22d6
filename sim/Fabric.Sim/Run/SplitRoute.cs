namespace Fabric.Sim.Run;

/// <summary>
/// An engine's route to a pool node split by who else crosses its channels: the engine's own (its GPU's PCIe, its
/// NIC's port), which only its fetches use, and the shared ones. Run in windows (<see cref="FifoWindows"/>), a fetch
/// is served on the engine's own channels when it is issued, on the engine's thread, and on the shared ones when the
/// window's fetches are booked: each channel still serves its transfers in the order they reach it.
/// </summary>
internal readonly record struct SplitRoute(int[] Own, int[] Shared, long LatencyNs)
{
    /// <summary>Every engine's routes split, by engine index, then pool node as in <see cref="EngineModel.Routes"/>.</summary>
    public static SplitRoute[][] Of(IReadOnlyList<EngineModel> engines)
    {
        const int Several = -1;
        var user = new Dictionary<int, int>(); // channel → the one engine whose routes cross it, or Several
        foreach (var engine in engines)
        {
            foreach (var route in engine.Routes)
            {
                foreach (var c in route.Channels)
                    user[c] = user.TryGetValue(c, out var u) && u != engine.Index ? Several : engine.Index;
            }
        }
        // The same channels come back for every pool node (an engine's own) and every engine (a pool node's): one array each.
        var arrays = new Dictionary<string, int[]>();
        int[] OneArray(IEnumerable<int> channels)
        {
            int[] a = [.. channels];
            var key = string.Join(',', a);
            return arrays.TryGetValue(key, out var existing) ? existing : arrays[key] = a;
        }
        var split = new SplitRoute[engines.Count == 0 ? 0 : engines.Max(e => e.Index) + 1][];
        foreach (var engine in engines)
        {
            split[engine.Index] = [.. engine.Routes.Select(r => new SplitRoute(
                OneArray(r.Channels.Where(c => user[c] == engine.Index)),
                OneArray(r.Channels.Where(c => user[c] != engine.Index)),
                r.LatencyNs))];
        }
        return split;
    }
}
