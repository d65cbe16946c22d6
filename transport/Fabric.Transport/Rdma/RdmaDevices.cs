using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Rdma;

/// <summary>One RDMA port as the probe found it.</summary>
/// <param name="Device">The verbs device name, e.g. "mlx5_0" or "rxe0".</param>
/// <param name="Port">The port number (from 1).</param>
/// <param name="IsActive">True when the port state is IBV_PORT_ACTIVE.</param>
/// <param name="LinkLayer">"InfiniBand", "Ethernet" (RoCE, rxe) or "unspecified".</param>
public sealed record RdmaPort(string Device, int Port, bool IsActive, string LinkLayer);

/// <summary>What the probe found: whether rdma:// can work here and, when it cannot, one sentence saying why.</summary>
public sealed record RdmaAvailability(bool IsUsable, string Reason, IReadOnlyList<RdmaPort> Ports)
{
    /// <summary>The sentence for refusing <paramref name="endpoint"/>: the cause and what to use instead.</summary>
    public string RefusalFor(FabricEndpoint endpoint) =>
        $"Cannot use {endpoint}: {Reason}; use tcp://{HostPort(endpoint)} or shm:///dev/shm/NAME instead.";

    private static string HostPort(FabricEndpoint endpoint) =>
        endpoint.Host.Contains(':') ? $"[{endpoint.Host}]:{endpoint.Port}" : $"{endpoint.Host}:{endpoint.Port}";
}

/// <summary>Probes this machine for RDMA devices with libibverbs, once per process.</summary>
public static unsafe class RdmaDevices
{
    private static readonly Lazy<RdmaAvailability> Cached = new(ProbeNow);

    /// <summary>The probe result, computed on first use.</summary>
    public static RdmaAvailability Probe() => Cached.Value;

    /// <summary>Throws <see cref="EndpointException"/> with one sentence unless rdma:// can be used for <paramref name="endpoint"/>.</summary>
    public static void EnsureUsable(FabricEndpoint endpoint)
    {
        var availability = Probe();
        if (!availability.IsUsable)
            throw new EndpointException(availability.RefusalFor(endpoint));
    }

    private static RdmaAvailability ProbeNow()
    {
        try
        {
            // The connection manager is needed too; find out now rather than on the first connect.
            if (!System.Runtime.InteropServices.NativeLibrary.TryLoad(RdmaCm.Library, out var rdmacm))
                return new RdmaAvailability(false, $"the RDMA library {RdmaCm.Library} could not be loaded (install the Debian package librdmacm1)", []);
            System.Runtime.InteropServices.NativeLibrary.Free(rdmacm);
            return ProbeDevices();
        }
        catch (DllNotFoundException e)
        {
            return new RdmaAvailability(false, Verbs.LibraryMissing(e, IbVerbs.Library, "libibverbs1 and ibverbs-providers"), []);
        }
        catch (EntryPointNotFoundException e)
        {
            return new RdmaAvailability(false, $"the installed {IbVerbs.Library} is too old ({e.Message.TrimEnd('.')})", []);
        }
    }

    private static RdmaAvailability ProbeDevices()
    {
        int count;
        var list = IbVerbs.GetDeviceList(&count);
        if (list == null)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            var cause = errno == 38 ? ", so the kernel has no RDMA support" : "";
            return new RdmaAvailability(false, $"no RDMA device is available on this machine (ibv_get_device_list failed with {Verbs.Describe(errno)}{cause})", []);
        }

        var ports = new List<RdmaPort>();
        try
        {
            for (var i = 0; i < count; i++)
                ports.AddRange(ProbePorts(list[i]));
        }
        finally
        {
            IbVerbs.FreeDeviceList(list);
        }

        if (count == 0)
            return new RdmaAvailability(false, "no RDMA device is available on this machine (ibv_get_device_list found none)", ports);
        if (!ports.Any(p => p.IsActive))
        {
            var seen = ports.Count == 0 ? "no port could be queried" : string.Join(", ", ports.Select(p => $"{p.Device} port {p.Port} is down"));
            return new RdmaAvailability(false, $"no RDMA port is active on this machine ({seen})", ports);
        }
        var active = ports.First(p => p.IsActive);
        return new RdmaAvailability(true, $"RDMA device {active.Device} port {active.Port} ({active.LinkLayer}) is active", ports);
    }

    private static List<RdmaPort> ProbePorts(IbvDevice* device)
    {
        var name = Verbs.Utf8(IbVerbs.GetDeviceName(device));
        var ports = new List<RdmaPort>();
        var context = IbVerbs.OpenDevice(device);
        if (context == null)
            return ports;
        using var owned = new SafeDeviceContext(context);
        // Most adapters have one or two ports; querying a port that does not exist fails and ends the scan.
        for (byte port = 1; port <= 2; port++)
        {
            IbvPortAttr attr;
            if (IbVerbs.QueryPort(context, port, &attr) != 0)
                break;
            var linkLayer = attr.LinkLayer switch { 1 => "InfiniBand", 2 => "Ethernet", _ => "unspecified" };
            ports.Add(new RdmaPort(name, port, attr.State == IbvPortState.Active, linkLayer));
        }
        return ports;
    }
}
