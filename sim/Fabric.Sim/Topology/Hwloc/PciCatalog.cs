namespace Fabric.Sim.Topology.Hwloc;

/// <summary>Datasheet figures of a GPU model: dense BF16 FLOP/s, HBM bandwidth, memory, in topology-file units.</summary>
public sealed record GpuModel(string Name, string PeakFlops, string MemoryBandwidth, string Memory);

/// <summary>
/// What the importer knows about PCI devices by vendor and device id (the PCI ID Repository's names; figures from the
/// vendors' datasheets: dense BF16 tensor FLOP/s without sparsity, HBM bandwidth, memory).
/// </summary>
public static class PciCatalog
{
    public const int Nvidia = 0x10de;
    public const int Amd = 0x1002;
    public const int Intel = 0x8086;

    /// <summary>The figures an unknown GPU model gets so that the file loads; the summary and the node's source say so.</summary>
    public static readonly GpuModel UnknownGpu = new("unknown model", "100TFLOP/s", "1TB/s", "16GiB");

    private static readonly Dictionary<(int, int), GpuModel> Gpus = new()
    {
        [(Nvidia, 0x2330)] = new("NVIDIA H100 SXM5 80GB", "989TFLOP/s", "3.35TB/s", "80GiB"),
        [(Nvidia, 0x2331)] = new("NVIDIA H100 PCIe 80GB", "756TFLOP/s", "2TB/s", "80GiB"),
        [(Nvidia, 0x2321)] = new("NVIDIA H100 NVL 94GB", "835TFLOP/s", "3.9TB/s", "94GB"),
        [(Nvidia, 0x2335)] = new("NVIDIA H200 SXM 141GB", "989TFLOP/s", "4.8TB/s", "141GB"),
        [(Nvidia, 0x20b0)] = new("NVIDIA A100 SXM4 40GB", "312TFLOP/s", "1.555TB/s", "40GiB"),
        [(Nvidia, 0x20b2)] = new("NVIDIA A100 SXM4 80GB", "312TFLOP/s", "2.039TB/s", "80GiB"),
        [(Nvidia, 0x20f1)] = new("NVIDIA A100 PCIe 40GB", "312TFLOP/s", "1.555TB/s", "40GiB"),
        [(Nvidia, 0x20b5)] = new("NVIDIA A100 PCIe 80GB", "312TFLOP/s", "1.935TB/s", "80GiB"),
        [(Nvidia, 0x26b9)] = new("NVIDIA L40S", "362TFLOP/s", "864GB/s", "48GiB"),
        [(Nvidia, 0x26b5)] = new("NVIDIA L40", "181TFLOP/s", "864GB/s", "48GiB"),
        [(Nvidia, 0x27b8)] = new("NVIDIA L4", "121TFLOP/s", "300GB/s", "24GiB"),
        [(Amd, 0x74a1)] = new("AMD Instinct MI300X", "1307TFLOP/s", "5.3TB/s", "192GB"),
        [(Amd, 0x7408)] = new("AMD Instinct MI250X", "383TFLOP/s", "3.2TB/s", "128GiB"),
        [(Amd, 0x740f)] = new("AMD Instinct MI210", "181TFLOP/s", "1.6TB/s", "64GiB"),
    };

    // Vendors whose PCI display controllers are only display: BMCs (ASPEED, Matrox G200e, Nuvoton/Winbond), and
    // the emulated adapters of virtual machines (QEMU/Bochs, virtio-gpu, VMware, Cirrus, Hyper-V, Red Hat QXL).
    private static readonly Dictionary<int, string> DisplayOnlyVendors = new()
    {
        [0x1a03] = "ASPEED BMC",
        [0x102b] = "Matrox",
        [0x1050] = "Nuvoton BMC",
        [0x19a2] = "Emulex Pilot BMC",
        [0x1234] = "QEMU",
        [0x1af4] = "virtio",
        [0x15ad] = "VMware",
        [0x1013] = "Cirrus Logic",
        [0x1414] = "Hyper-V",
        [0x1b36] = "Red Hat QXL",
    };

    // Network adapters' port speed per direction, as the vendors rate them.
    private static readonly Dictionary<(int, int), (string Name, string Speed)> Nics = new()
    {
        [(0x15b3, 0x1021)] = ("NVIDIA ConnectX-7", "400Gb/s"),
        [(0x15b3, 0x101b)] = ("NVIDIA ConnectX-6", "200Gb/s"),
        [(0x15b3, 0x101d)] = ("NVIDIA ConnectX-6 Dx", "100Gb/s"),
        [(0x15b3, 0x1017)] = ("NVIDIA ConnectX-5", "100Gb/s"),
        [(0x15b3, 0x1023)] = ("NVIDIA ConnectX-8", "800Gb/s"),
        [(0x15b3, 0xa2dc)] = ("NVIDIA BlueField-3", "400Gb/s"),
        [(0x8086, 0x1592)] = ("Intel E810-C", "100Gb/s"),
        [(0x14e4, 0x1750)] = ("Broadcom BCM57508", "200Gb/s"),
    };

    private static readonly Dictionary<int, string> SwitchVendors = new()
    {
        [0x10b5] = "Broadcom/PLX",
        [0x1000] = "Broadcom",
        [0x11f8] = "Microchip",
        [0x1d9b] = "Microchip",
    };

    /// <summary>The known model of a GPU by PCI id, or null.</summary>
    public static GpuModel? Gpu(PciId id) => Gpus.GetValueOrDefault((id.Vendor, id.Device));

    /// <summary>A model named by an OS device's GPUModel info ("NVIDIA H100 80GB HBM3"), matched by its family name.</summary>
    public static GpuModel? GpuByName(string model)
    {
        bool Has(string s) => model.Contains(s, StringComparison.OrdinalIgnoreCase);
        (int, int)? key = Has("H200") ? (Nvidia, 0x2335)
            : Has("H100") && Has("PCIe") ? (Nvidia, 0x2331)
            : Has("H100") && Has("NVL") ? (Nvidia, 0x2321)
            : Has("H100") ? (Nvidia, 0x2330)
            : Has("A100") && Has("40GB") ? (Nvidia, 0x20b0)
            : Has("A100") ? (Nvidia, 0x20b2)
            : Has("L40S") ? (Nvidia, 0x26b9)
            : Has("L40") ? (Nvidia, 0x26b5)
            : Has("MI300X") ? (Amd, 0x74a1)
            : null;
        return key is { } k ? Gpus[k] : null;
    }

    /// <summary>The reason a display controller is not a GPU, or null when it may be one.</summary>
    public static string? DisplayOnly(PciId id) =>
        DisplayOnlyVendors.TryGetValue(id.Vendor, out var who) ? $"{who} display controller"
        : id.ClassId == 0x0300 && id.Vendor is not (Nvidia or Amd or Intel) ? "VGA controller of an unknown vendor"
        : null;

    public static (string Name, string Speed)? Nic(PciId id) =>
        Nics.TryGetValue((id.Vendor, id.Device), out var n) ? n : null;

    public static string SwitchVendor(PciId? id) =>
        id is { } i && SwitchVendors.TryGetValue(i.Vendor, out var v) ? $"{v} {i.VendorDevice}" : id is { } j ? j.VendorDevice : "unknown";
}
