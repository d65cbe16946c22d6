namespace Fabric.Sim.Topology;

/// <summary>
/// PCIe bandwidth per direction from generation and lane count, as the PCI-SIG specifications define the signalling:
/// Gen1/2 2.5/5 GT/s with 8b/10b coding, Gen3/4/5 8/16/32 GT/s with 128b/130b, Gen6 64 GT/s PAM4 with 242/256 FLIT coding.
/// This is the raw link rate; protocol overhead (TLP headers, flow control) is what a link's <c>efficiency</c> takes off.
/// </summary>
public static class Pcie
{
    /// <summary>Bytes per second per direction of a link of <paramref name="generation"/> and <paramref name="width"/> lanes, or 0 when unknown.</summary>
    public static double BytesPerSecond(int generation, int width)
    {
        if (width is not (1 or 2 or 4 or 8 or 16 or 32))
            return 0;
        double gigaTransfers, coding;
        switch (generation)
        {
            case 1: gigaTransfers = 2.5; coding = 8.0 / 10; break;
            case 2: gigaTransfers = 5; coding = 8.0 / 10; break;
            case 3: gigaTransfers = 8; coding = 128.0 / 130; break;
            case 4: gigaTransfers = 16; coding = 128.0 / 130; break;
            case 5: gigaTransfers = 32; coding = 128.0 / 130; break;
            case 6: gigaTransfers = 64; coding = 242.0 / 256; break;
            default: return 0;
        }
        return gigaTransfers * 1e9 * coding * width / 8;
    }
}
