using Fabric.Common;

namespace Fabric.Engine.Device;

/// <summary>
/// The device's whole memory budget (<c>--device-memory</c>) and the engine's own accounting of it. Every device
/// allocation goes through <see cref="Reserve"/>; the CPU device enforces it alone, a GPU device in addition to the driver.
/// Thread-safe.
/// </summary>
public sealed class DeviceMemoryBudget
{
    private readonly Lock _gate = new();
    private long _used;
    private long _peak;

    /// <remarks>capacityBytes: The whole budget in bytes.</remarks>
    public DeviceMemoryBudget(long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityBytes);
        CapacityBytes = capacityBytes;
    }

    /// <summary>The budget in bytes.</summary>
    public long CapacityBytes { get; }

    /// <summary>Bytes reserved now.</summary>
    public long UsedBytes
    {
        get
        {
            lock (_gate)
                return _used;
        }
    }

    /// <summary>The most bytes ever reserved at once.</summary>
    public long PeakBytes
    {
        get
        {
            lock (_gate)
                return _peak;
        }
    }

    /// <summary>Bytes still free.</summary>
    public long FreeBytes => CapacityBytes - UsedBytes;

    /// <summary>Reserves <paramref name="bytes"/> for <paramref name="purpose"/>, or throws <see cref="InsufficientDeviceMemoryException"/>.</summary>
    public void Reserve(long bytes, string purpose)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_gate)
        {
            if (_used + bytes > CapacityBytes)
            {
                throw new InsufficientDeviceMemoryException(
                    $"The device memory budget of {ByteSize.Format(CapacityBytes)} is too small: {purpose} needs {ByteSize.Format(bytes)} more " +
                    $"with {ByteSize.Format(_used)} already reserved (at least {ByteSize.Format(_used + bytes)} in all).",
                    _used + bytes);
            }
            _used += bytes;
            _peak = Math.Max(_peak, _used);
        }
    }

    /// <summary>Returns <paramref name="bytes"/> reserved earlier.</summary>
    public void Release(long bytes)
    {
        lock (_gate)
            _used = Math.Max(0, _used - bytes);
    }
}

/// <summary>The device budget cannot hold what the engine must reserve; the message says how much is needed.</summary>
public sealed class InsufficientDeviceMemoryException : FabricException
{
    public InsufficientDeviceMemoryException(string message, long requiredBytes) : base(message) => RequiredBytes = requiredBytes;

    /// <summary>The smallest budget, in bytes, that would have satisfied the reservation.</summary>
    public long RequiredBytes { get; }
}
