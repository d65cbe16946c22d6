namespace Fabric.Transport.Shm;

/// <summary>Where the pieces of an shm endpoint live: DAX devices versus files, and the control socket beside them.</summary>
internal static class ShmPaths
{
    /// <summary>Regions in a DAX device are aligned to 2 MiB, the device's mapping granularity.</summary>
    public const int DaxAlignment = 2 * 1024 * 1024;

    /// <summary>The longest Unix socket path Linux accepts (sun_path holds 108 bytes with the NUL).</summary>
    public const int MaxSocketPathBytes = 107;

    public static bool IsDax(string path) => path.StartsWith("/dev/dax", StringComparison.Ordinal);

    /// <summary>PATH.ctl beside a file; for a DAX device (no directory to write in) a socket under the temp folder.</summary>
    public static string ControlSocket(string path) =>
        IsDax(path) ? System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"fabric-{System.IO.Path.GetFileName(path)}.ctl") : path + ".ctl";

    /// <summary>The size of a DAX device from sysfs.</summary>
    public static long DaxSize(string path)
    {
        var sysfs = $"/sys/bus/dax/devices/{System.IO.Path.GetFileName(path)}/size";
        return File.Exists(sysfs) && long.TryParse(File.ReadAllText(sysfs).Trim(), out var size)
            ? size
            : throw new EndpointException($"Cannot size shm://{path}: {sysfs} is missing or unreadable.");
    }
}
