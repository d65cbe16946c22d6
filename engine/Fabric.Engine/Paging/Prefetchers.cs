namespace Fabric.Engine.Paging;

/// <summary>Creates prefetchers by their command-line names.</summary>
public static class Prefetchers
{
    public static readonly string[] Names = ["none", "next-layer", "history"];

    public static IPrefetcher Create(string name, int layers, int expertsPerLayer, int topK) => name switch
    {
        "none" => new NoPrefetcher(),
        "next-layer" => new NextLayerPrefetcher(),
        "history" => new HistoryPrefetcher(layers, expertsPerLayer, topK),
        _ => throw new ArgumentException($"There is no prefetch mode named '{name}'; use one of {string.Join(", ", Names)}.", nameof(name)),
    };
}
