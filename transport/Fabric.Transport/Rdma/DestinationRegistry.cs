using System.Buffers;
using System.Runtime.InteropServices;
using Fabric.Common;
using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Rdma;

/// <summary>One registered destination buffer: the whole allocation behind a Memory, pinned and registered once.</summary>
internal sealed class DestinationRegistration : IDisposable
{
    private readonly SafeMemoryRegion _region;
    private MemoryHandle _pin;
    private GCHandle _arrayPin;
    private int _inUse;

    public DestinationRegistration(SafeMemoryRegion region, MemoryHandle pin, GCHandle arrayPin)
    {
        _region = region;
        _pin = pin;
        _arrayPin = arrayPin;
    }

    public uint Lkey => _region.Lkey;
    public ulong Address => _region.Address;
    public bool InUse => Volatile.Read(ref _inUse) > 0;

    public void BeginUse() => Interlocked.Increment(ref _inUse);
    public void EndUse() => Interlocked.Decrement(ref _inUse);

    public void Dispose()
    {
        _region.Dispose();
        _pin.Dispose();
        if (_arrayPin.IsAllocated)
            _arrayPin.Free();
    }
}

/// <summary>
/// Registers the client's destination buffers with the NIC once and finds them again by their owner (the
/// <see cref="MemoryManager{T}"/> such as a <see cref="NativeBuffer"/>, or the array). Arrays are pinned for as long
/// as they stay registered; when more than <see cref="MaxEntries"/> owners are registered, idle ones are dropped.
/// </summary>
internal sealed unsafe class DestinationRegistry : IDisposable
{
    public const int MaxEntries = 1024;

    private readonly SafeProtectionDomain _pd;
    private readonly Dictionary<object, DestinationRegistration> _entries = new(ReferenceEqualityComparer.Instance);
    private readonly Lock _gate = new();
    private bool _disposed;

    public DestinationRegistry(SafeProtectionDomain pd) => _pd = pd;

    public int Count
    {
        get
        {
            lock (_gate)
                return _entries.Count;
        }
    }

    /// <summary>
    /// The registration covering <paramref name="destination"/> and the address of its first byte, marked in use until
    /// <see cref="DestinationRegistration.EndUse"/>. Registers the owner on first sight (the slow path).
    /// </summary>
    public DestinationRegistration Acquire(Memory<byte> destination, out ulong address)
    {
        object owner;
        int start;
        if (MemoryMarshal.TryGetMemoryManager<byte, MemoryManager<byte>>(destination, out var manager, out start, out _))
            owner = manager;
        else if (MemoryMarshal.TryGetArray<byte>(destination, out var segment))
        {
            owner = segment.Array!;
            start = segment.Offset;
        }
        else
            throw new ArgumentException("An RDMA read destination must be backed by an array or a MemoryManager such as NativeBuffer.", nameof(destination));

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_entries.TryGetValue(owner, out var entry))
            {
                if (_entries.Count >= MaxEntries)
                    DropIdleLocked();
                entry = Register(owner);
                _entries.Add(owner, entry);
            }
            entry.BeginUse();
            address = entry.Address + (ulong)start;
            return entry;
        }
    }

    private DestinationRegistration Register(object owner)
    {
        MemoryHandle pin = default;
        var arrayPin = default(GCHandle);
        void* pointer;
        long length;
        if (owner is MemoryManager<byte> manager)
        {
            pin = manager.Pin();
            pointer = pin.Pointer;
            length = manager.GetSpan().Length;
        }
        else
        {
            var array = (byte[])owner;
            arrayPin = GCHandle.Alloc(array, GCHandleType.Pinned);
            pointer = (void*)arrayPin.AddrOfPinnedObject();
            length = array.Length;
        }

        try
        {
            var mr = Verbs.CheckPointer(IbVerbs.RegMr(_pd.Pointer, pointer, (nuint)Math.Max(1, length), IbvAccessFlags.LocalWrite), "ibv_reg_mr");
            return new DestinationRegistration(new SafeMemoryRegion(mr, _pd), pin, arrayPin);
        }
        catch
        {
            pin.Dispose();
            if (arrayPin.IsAllocated)
                arrayPin.Free();
            throw;
        }
    }

    private void DropIdleLocked()
    {
        foreach (var (owner, entry) in _entries.ToList())
        {
            if (entry.InUse)
                continue;
            _entries.Remove(owner);
            entry.Dispose();
        }
    }

    /// <summary>Deregisters everything; call only when no read is in flight.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var entry in _entries.Values)
                entry.Dispose();
            _entries.Clear();
        }
    }
}
