namespace Fabric.Sim.Topology;

// The YAML shapes of a topology file, read and written with YamlDotNet (underscored names). Quantities stay text
// ("64GB/s") until the loader resolves them, so that an error can quote what the person wrote.
#pragma warning disable CA2227 // YamlDotNet fills these collections.

/// <summary>A whole topology file.</summary>
public sealed class TopologyDocument
{
    public string? Name { get; set; }
    public string? Description { get; set; }

    /// <summary>Where the published figures in this file come from.</summary>
    public List<string>? Sources { get; set; }

    public CalibrationDocument? Calibration { get; set; }
    public Dictionary<string, TemplateDocument>? Templates { get; set; }
    public List<NodeDocument>? Nodes { get; set; }
    public List<LinkDocument>? Links { get; set; }
    public List<InstanceDocument>? Instances { get; set; }
}

/// <summary>A reusable group of nodes and links (a server, a rack), instantiated by <see cref="InstanceDocument"/>.</summary>
public sealed class TemplateDocument
{
    public List<NodeDocument>? Nodes { get; set; }
    public List<LinkDocument>? Links { get; set; }
    public List<InstanceDocument>? Instances { get; set; }
}

/// <summary><c>{template: h100_node, count: 128, name: "node{i}"}</c>: node names inside become <c>node7.gpu0</c>.</summary>
public sealed class InstanceDocument
{
    public string? Template { get; set; }
    public int? Count { get; set; }
    public string? Name { get; set; }
}

/// <summary>One node (or <see cref="Count"/> nodes named with <c>{i}</c>).</summary>
public sealed class NodeDocument
{
    public string? Name { get; set; }
    public string? Type { get; set; }
    public int? Count { get; set; }

    /// <summary>Device memory of a gpu, capacity of a dram / cxl_type3 node ("80GiB").</summary>
    public string? Memory { get; set; }

    /// <summary>Local memory bandwidth of a compute node (HBM for a gpu, DRAM for a cpu), e.g. "3.35TB/s".</summary>
    public string? MemoryBandwidth { get; set; }

    /// <summary>Peak dense FLOP/s of a compute node, e.g. "989TFLOP/s".</summary>
    public string? PeakFlops { get; set; }

    /// <summary>Whether a memory node may hold the expert pool; dram and cxl_type3 default to true.</summary>
    public bool? Pool { get; set; }

    /// <summary>Where the figures come from.</summary>
    public string? Source { get; set; }
}

/// <summary>One full-duplex link (or <see cref="Count"/> links named with <c>{i}</c>).</summary>
public sealed class LinkDocument
{
    public string? From { get; set; }
    public string? To { get; set; }
    public int? Count { get; set; }

    /// <summary>pcie, cxl, nvlink, ethernet, infiniband, shm, tcp, memory... free text for reports.</summary>
    public string? Kind { get; set; }

    /// <summary>Bandwidth per direction ("64GB/s", "400Gb/s").</summary>
    public string? Bandwidth { get; set; }
    public string? Latency { get; set; }

    /// <summary>PCIe generation and width; the bandwidth follows from them when <see cref="Bandwidth"/> is absent.</summary>
    public int? PcieGen { get; set; }
    public int? PcieWidth { get; set; }

    /// <summary>Fraction of the raw rate the protocol delivers (0..1]; 1 when absent.</summary>
    public double? Efficiency { get; set; }

    /// <summary>Takes bandwidth and latency from the calibration block's entry of this name.</summary>
    public string? Calibrated { get; set; }
    public string? Source { get; set; }
}

/// <summary>Measured link parameters and where they were measured.</summary>
public sealed class CalibrationDocument
{
    /// <summary>The command and machine the numbers came from.</summary>
    public string? Source { get; set; }
    public string? Date { get; set; }
    public Dictionary<string, CalibratedLinkDocument>? Links { get; set; }
}

public sealed class CalibratedLinkDocument
{
    public string? Bandwidth { get; set; }
    public string? Latency { get; set; }
    public string? Note { get; set; }
}
