namespace Fabric.Model;

/// <summary>The element types a checkpoint tensor may have. Values are stable: they travel in the catalog.</summary>
public enum TensorDtype : byte
{
    F32 = 0,
    F16 = 1,
    BF16 = 2,
}

/// <summary>Sizes and names of <see cref="TensorDtype"/>.</summary>
public static class TensorDtypes
{
    /// <summary>Bytes per element.</summary>
    public static int ByteSize(this TensorDtype dtype) => dtype == TensorDtype.F32 ? 4 : 2;

    /// <summary>The name safetensors headers use: "F32", "F16", "BF16".</summary>
    public static string SafetensorsName(this TensorDtype dtype) => dtype switch
    {
        TensorDtype.F32 => "F32",
        TensorDtype.F16 => "F16",
        _ => "BF16",
    };

    /// <summary>The name Hugging Face configs use in <c>torch_dtype</c>: "float32", "float16", "bfloat16".</summary>
    public static string TorchName(this TensorDtype dtype) => dtype switch
    {
        TensorDtype.F32 => "float32",
        TensorDtype.F16 => "float16",
        _ => "bfloat16",
    };

    /// <summary>Parses a safetensors dtype name; false for every type Fabric does not handle (I8, F64, F8_E4M3...).</summary>
    public static bool TryParseSafetensors(string? name, out TensorDtype dtype)
    {
        switch (name)
        {
            case "F32": dtype = TensorDtype.F32; return true;
            case "F16": dtype = TensorDtype.F16; return true;
            case "BF16": dtype = TensorDtype.BF16; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>Parses a user's or a config's dtype word: bf16/bfloat16, f16/float16/fp16, f32/float32/fp32.</summary>
    public static bool TryParse(string? name, out TensorDtype dtype)
    {
        switch (name?.ToLowerInvariant())
        {
            case "f32" or "fp32" or "float32" or "float": dtype = TensorDtype.F32; return true;
            case "f16" or "fp16" or "float16" or "half": dtype = TensorDtype.F16; return true;
            case "bf16" or "bfloat16": dtype = TensorDtype.BF16; return true;
            default: dtype = default; return false;
        }
    }
}
