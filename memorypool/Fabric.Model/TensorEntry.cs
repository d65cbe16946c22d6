namespace Fabric.Model;

/// <summary>
/// One tensor of a checkpoint: its name, shape, dtype and where its bytes lie — <see cref="Length"/> bytes at
/// <see cref="Offset"/> (absolute, from the start of <see cref="File"/>).
/// </summary>
public sealed record TensorEntry(string Name, TensorDtype Dtype, long[] Shape, string File, long Offset, long Length)
{
    /// <summary>The number of elements (the product of the shape; 1 for a scalar).</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape as text, e.g. "[14336, 4096]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>Which of an expert's three projections a tensor is.</summary>
public enum ExpertProjection : byte
{
    /// <summary>Mixtral w1, gate_proj: [intermediate, hidden].</summary>
    Gate = 0,
    /// <summary>Mixtral w3, up_proj: [intermediate, hidden].</summary>
    Up = 1,
    /// <summary>Mixtral w2, down_proj: [hidden, intermediate].</summary>
    Down = 2,
}

/// <summary>
/// The three tensors of one routed expert. <see cref="Expert"/> is -1 for Qwen2-MoE's shared expert, whose tensors
/// are also part of the dense set.
/// </summary>
public sealed record ExpertTensors(int Layer, int Expert, TensorEntry Gate, TensorEntry Up, TensorEntry Down)
{
    /// <summary>Bytes of gate + up + down.</summary>
    public long Bytes => Gate.Length + Up.Length + Down.Length;

    /// <summary>The tensor of <paramref name="projection"/>.</summary>
    public TensorEntry this[ExpertProjection projection] => projection switch
    {
        ExpertProjection.Gate => Gate,
        ExpertProjection.Up => Up,
        _ => Down,
    };
}
