namespace Fabric.Engine.Paging;

/// <summary>The identity of one routed expert everywhere in Fabric: its layer and its index within the layer.</summary>
public readonly record struct ExpertKey(int Layer, int Expert)
{
    public override string ToString() => $"L{Layer}E{Expert}";
}
