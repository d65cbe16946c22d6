using System.Runtime.InteropServices;
using System.Text;
using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Rdma;

/// <summary>
/// The one place where native return codes become exceptions and names: errno values, work-completion statuses,
/// connection-manager events, and a library that cannot be loaded.
/// </summary>
internal static unsafe class Verbs
{
    private static readonly Dictionary<int, string> ErrnoNames = new()
    {
        [1] = "EPERM", [2] = "ENOENT", [4] = "EINTR", [5] = "EIO", [11] = "EAGAIN", [12] = "ENOMEM", [13] = "EACCES",
        [14] = "EFAULT", [16] = "EBUSY", [17] = "EEXIST", [19] = "ENODEV", [22] = "EINVAL", [24] = "EMFILE",
        [28] = "ENOSPC", [38] = "ENOSYS", [61] = "ENODATA", [71] = "EPROTO", [93] = "EPROTONOSUPPORT", [95] = "EOPNOTSUPP",
        [97] = "EAFNOSUPPORT", [98] = "EADDRINUSE", [99] = "EADDRNOTAVAIL", [100] = "ENETDOWN", [101] = "ENETUNREACH",
        [103] = "ECONNABORTED", [104] = "ECONNRESET", [107] = "ENOTCONN", [110] = "ETIMEDOUT", [111] = "ECONNREFUSED",
        [113] = "EHOSTUNREACH",
    };

    /// <summary>Throws unless <paramref name="rc"/> is 0. A positive rc is the errno itself (verbs style); -1 means errno is set (rdma_cm style).</summary>
    public static void Check(int rc, string call)
    {
        if (rc == 0)
            return;
        throw Error(call, rc > 0 ? rc : Marshal.GetLastPInvokeError());
    }

    /// <summary>Returns <paramref name="pointer"/> or throws with errno when it is null.</summary>
    public static T* CheckPointer<T>(T* pointer, string call) where T : unmanaged =>
        pointer != null ? pointer : throw Error(call, Marshal.GetLastPInvokeError());

    public static RdmaException Error(string call, int errno)
    {
        // Registering memory pins it, which the locked-memory limit caps; that is the usual cause of these two.
        var hint = call == "ibv_reg_mr" && errno is 12 or 1 ? "; raise the locked-memory limit (ulimit -l unlimited, or memlock in /etc/security/limits.conf)" : "";
        return new(call, errno, $"{call} failed with {Describe(errno)}{hint}.");
    }

    /// <summary>"ENOSYS (Function not implemented)".</summary>
    public static string Describe(int errno) =>
        errno == 0 ? "no errno" : $"{ErrnoName(errno)} ({Marshal.GetPInvokeErrorMessage(errno)})";

    public static string ErrnoName(int errno) => ErrnoNames.TryGetValue(errno, out var name) ? name : $"errno {errno}";

    /// <summary>"IBV_WC_RETRY_EXC_ERR (transport retry counter exceeded)": the enum name and ibv_wc_status_str.</summary>
    public static string Describe(IbvWcStatus status)
    {
        var name = Enum.IsDefined(status) ? "IBV_WC_" + Snake(status.ToString()) : $"IBV_WC status {(int)status}";
        return $"{name} ({Utf8(IbVerbs.WcStatusStr(status))})";
    }

    public static string Describe(RdmaCmEventType type) => "RDMA_CM_EVENT_" + Snake(type.ToString());

    /// <summary>The clause for a native library that cannot be loaded: what failed and what to install.</summary>
    public static string LibraryMissing(DllNotFoundException e, string library, string packages) =>
        $"the RDMA library {library} could not be loaded ({FirstSentence(e.Message)}; install the Debian packages {packages})";

    public static string Utf8(byte* text) => text == null ? "" : Marshal.PtrToStringUTF8((nint)text) ?? "";

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        var line = message.IndexOf('\n');
        if (line > 0 && (end < 0 || line < end))
            end = line;
        return (end > 0 ? message[..end] : message).TrimEnd('.', ' ', ':');
    }

    private static string Snake(string pascal)
    {
        var text = new StringBuilder();
        foreach (var c in pascal)
        {
            if (char.IsUpper(c) && text.Length > 0)
                text.Append('_');
            text.Append(char.ToUpperInvariant(c));
        }
        return text.ToString();
    }
}
