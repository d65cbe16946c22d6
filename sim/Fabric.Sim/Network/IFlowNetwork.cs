
namespace Fabric.Sim.Network;

/// <summary>
/// Moves transfers over directed channels in virtual time. Two models: <see cref="MaxMin.FlowNetwork"/> (exact max-min fair
/// sharing) and <see cref="Fifo.FifoNetwork"/> (each channel serves its transfers in turn, an approximation).
/// </summary>
public interface IFlowNetwork
{
    /// <summary>Transfers started and not yet completed.</summary>
    int LiveFlows { get; }

    /// <summary>Bytes each channel has carried, for utilisation reports: max-min counts completed transfers, fifo every
    /// transfer started (its service is fixed then).</summary>
    ReadOnlySpan<double> BytesCarried { get; }

    /// <summary>When the last transfer completed (fifo: completes, known from its start), ns.</summary>
    long LastCompletionNs { get; }

    /// <summary>
    /// Declares every route that transfers will take from now on, so that a model may leave out the channels that can
    /// never constrain them (<see cref="MaxMin.RedundantChannels"/>).
    /// </summary>
    void DeclareRoutes(IReadOnlyCollection<int[]> routes);

    /// <summary>
    /// Starts moving <paramref name="bytes"/> over <paramref name="channels"/> (the array is kept, not copied: share
    /// one per route). The listener hears of it after <paramref name="latencyNs"/> plus the transfer time.
    /// </summary>
    int Start(int[] channels, long latencyNs, long bytes, IFlowListener listener, long tag);
}
