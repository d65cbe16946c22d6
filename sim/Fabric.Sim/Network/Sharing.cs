namespace Fabric.Sim.Network;

/// <summary>How transfers share the channels they cross.</summary>
public enum Sharing
{
    /// <summary>Max-min fair sharing, recomputed exactly whenever a transfer starts or ends (<see cref="MaxMin.FlowNetwork"/>).</summary>
    MaxMin,

    /// <summary>
    /// Each channel serves the transfers that reach it one after another at its full bandwidth (<see cref="Fifo.FifoNetwork"/>):
    /// an approximation that needs no re-sharing, and whose transfers' completions are known when they start.
    /// </summary>
    Fifo,
}

/// <summary>The names of the sharing models in workload files and on the command line.</summary>
public static class SharingNames
{
    public const string MaxMin = "max-min";
    public const string Fifo = "fifo";

    public static IReadOnlyList<string> All { get; } = [MaxMin, Fifo];

    public static string Of(Sharing sharing) => sharing == Sharing.Fifo ? Fifo : MaxMin;

    /// <summary>The model named <paramref name="name"/>, or null when there is none.</summary>
    public static Sharing? Parse(string name) => name switch
    {
        MaxMin => Sharing.MaxMin,
        Fifo => Sharing.Fifo,
        _ => null,
    };
}
