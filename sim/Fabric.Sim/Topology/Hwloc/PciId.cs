using System.Globalization;

namespace Fabric.Sim.Topology.Hwloc;

/// <summary>
/// A PCI function's identity from hwloc's <c>pci_type</c> attribute: <c>"0302 [10de:2330] [10de:16c1] a1"</c> (2.x) or with
/// the programming interface appended (3.x). Class 0300 is a VGA controller, 0302 a 3D controller, 02xx a network
/// controller, 0502 a CXL memory device, 01xx storage, 1200 a processing accelerator.
/// </summary>
public readonly record struct PciId(int ClassId, int Vendor, int Device)
{
    public int BaseClass => ClassId >> 8;

    /// <summary>"10de:2330".</summary>
    public string VendorDevice => string.Create(CultureInfo.InvariantCulture, $"{Vendor:x4}:{Device:x4}");

    public static PciId? Parse(string? pciType)
    {
        if (string.IsNullOrWhiteSpace(pciType))
            return null;
        var parts = pciType.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cls))
            return null;
        var ids = parts[1].Trim('[', ']').Split(':');
        if (ids.Length != 2
            || !int.TryParse(ids[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var vendor)
            || !int.TryParse(ids[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var device))
            return null;
        return new PciId(cls, vendor, device);
    }
}
