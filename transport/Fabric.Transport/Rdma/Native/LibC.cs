using System.Runtime.InteropServices;

namespace Fabric.Transport.Rdma.Native;

/// <summary>libc: poll(2) on the connection manager's descriptor, so that its thread waits with a timeout and can stop.</summary>
internal static unsafe partial class LibC
{
    public const string Library = "libc.so.6";
    public const short PollIn = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Library, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);
}
