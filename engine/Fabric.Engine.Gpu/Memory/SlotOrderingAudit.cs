using Fabric.Engine.Device;

namespace Fabric.Engine.Gpu.Memory;

/// <summary>
/// Checks the ordering a GPU device must keep between its two streams: a copy into a slot must wait (on the device)
/// for every expert computation already enqueued that reads the same bytes. The device reports each expert read with
/// the last compute fence recorded before it, and each slot copy with the compute fence the copy stream waits on; a copy
/// whose fence does not cover an earlier read of an overlapping range is a violation. Kernels on the CPU accelerator run
/// as they are enqueued, so only this bookkeeping can show a missing wait without a GPU. Thread-safe.
/// </summary>
public sealed class SlotOrderingAudit
{
    private readonly Lock _gate = new();
    private readonly List<(DeviceBuffer Buffer, long Start, long End, long AfterFence)> _reads = [];
    private readonly List<string> _violations = [];

    /// <summary>Copies that overwrote bytes an earlier expert computation had read (evictions), counted.</summary>
    public int Overwrites { get; private set; }

    /// <summary>One sentence per copy that did not wait for an earlier read of its bytes.</summary>
    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_gate)
                return [.. _violations];
        }
    }

    /// <summary>An expert computation reads [start, end) of <paramref name="buffer"/>; fences after <paramref name="lastFence"/> cover it.</summary>
    public void Read(DeviceBuffer buffer, long start, long end, long lastFence)
    {
        lock (_gate)
            _reads.Add((buffer, start, end, lastFence));
    }

    /// <summary>A copy writes [start, end) of <paramref name="buffer"/> after the compute work before fence <paramref name="waitedFence"/>.</summary>
    public void Write(DeviceBuffer buffer, long start, long end, long waitedFence)
    {
        lock (_gate)
        {
            bool overwrote = false;
            foreach (var read in _reads)
            {
                if (!ReferenceEquals(read.Buffer, buffer) || read.End <= start || end <= read.Start)
                    continue;
                overwrote = true;
                if (waitedFence <= read.AfterFence)
                    _violations.Add($"A copy into bytes {start}..{end} waited for compute fence {waitedFence}, but an expert read of {read.Start}..{read.End} was enqueued after fence {read.AfterFence}.");
            }
            if (overwrote)
                Overwrites++;
            _reads.RemoveAll(r => ReferenceEquals(r.Buffer, buffer) && r.Start < end && start < r.End && waitedFence > r.AfterFence);
        }
    }
}
