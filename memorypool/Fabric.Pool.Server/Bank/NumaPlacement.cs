using System.Runtime.InteropServices;
using Fabric.Common;

namespace Fabric.Pool.Server.Bank;

/// <summary>
/// Binds memory to a NUMA node through libnuma (a CXL memory expander shows up as a CPU-less node). Every failure is
/// one sentence: libnuma missing, NUMA unavailable, or a node that does not exist.
/// </summary>
public static partial class NumaPlacement
{
    /// <summary>The highest node number, or an exception saying why NUMA placement is impossible here.</summary>
    public static int MaxNode()
    {
        try
        {
            if (Native.numa_available() < 0)
                throw new FabricException("NUMA placement is not available on this machine (numa_available() failed); leave out --numa-node.");
            return Native.numa_max_node();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new FabricException("--numa-node needs libnuma (libnuma.so.1), which is not installed; install the Debian package libnuma1 or leave out --numa-node.", e);
        }
    }

    /// <summary>Checks that <paramref name="node"/> exists; throws a one-sentence <see cref="FabricException"/> otherwise.</summary>
    public static void EnsureNode(int node)
    {
        var max = MaxNode();
        if (node < 0 || node > max)
            throw new FabricException($"NUMA node {node} does not exist on this machine; its nodes are 0 to {max}.");
    }

    /// <summary>Binds <paramref name="length"/> bytes at <paramref name="address"/> (page aligned, not yet touched) to <paramref name="node"/>.</summary>
    public static void Bind(nint address, nuint length, int node)
    {
        EnsureNode(node);
        Native.numa_tonode_memory(address, length, node);
    }

    private static partial class Native
    {
        [LibraryImport("libnuma.so.1")]
        public static partial int numa_available();

        [LibraryImport("libnuma.so.1")]
        public static partial int numa_max_node();

        [LibraryImport("libnuma.so.1")]
        public static partial void numa_tonode_memory(nint start, nuint size, int node);
    }
}
