using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Fabric.Engine.Gpu.Memory;

/// <summary>A point in a stream's queue: everything enqueued before <see cref="StreamFences.Record"/> returned it.</summary>
public readonly record struct StreamTicket(int Index, long Generation)
{
    /// <summary>A ticket that is always complete (nothing to wait for).</summary>
    public static StreamTicket None => new(-1, 0);
}

/// <summary>
/// Completion events for one stream, created once as a ring (no allocation per copy). On CUDA a ticket is a
/// CUDA event; another stream can wait for it on the device (cuStreamWaitEvent) or the host can block on it. On the
/// CPU accelerator work completes as it is enqueued, so waits synchronise the stream and return.
/// When the ring wraps, an older ticket waits on the newer event in its place: later, so still correct.
/// Events block on sync: a host wait sleeps in the driver instead of spinning a thread-pool thread per fetch.
/// </summary>
public sealed class StreamFences : IDisposable
{
    private readonly AcceleratorStream _stream;
    private readonly IntPtr[] _events;
    private readonly long[] _generations;
    private long _recorded;

    /// <summary>Fences for <paramref name="stream"/> (not owned); <paramref name="capacity"/> events in the ring.</summary>
    public StreamFences(AcceleratorStream stream, int capacity = 64)
    {
        _stream = stream;
        _events = new IntPtr[stream is CudaStream ? capacity : 0];
        _generations = new long[capacity];
        for (int i = 0; i < _events.Length; i++)
        {
            stream.Accelerator.Bind();
            CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.CreateEvent(out _events[i], CudaEventFlags.CU_EVENT_DISABLE_TIMING | CudaEventFlags.CU_EVENT_BLOCKING_SYNC));
        }
    }

    /// <summary>The generation of the last ticket recorded (0 before the first).</summary>
    public long LastRecorded => Interlocked.Read(ref _recorded);

    /// <summary>Marks the current end of the stream's queue.</summary>
    public StreamTicket Record()
    {
        long generation = Interlocked.Increment(ref _recorded);
        int index = (int)(generation % _generations.Length);
        _generations[index] = generation;
        if (_stream is CudaStream cuda)
            CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.RecordEvent(_events[index], cuda.StreamPtr));
        return new StreamTicket(index, generation);
    }

    /// <summary>True when the work before <paramref name="ticket"/> has finished; never blocks.</summary>
    public bool IsComplete(StreamTicket ticket)
    {
        if (ticket.Index < 0)
            return true;
        if (_stream is not CudaStream)
            return true;
        return CudaAPI.CurrentAPI.QueryEvent(_events[ticket.Index]) == CudaError.CUDA_SUCCESS;
    }

    /// <summary>Blocks the calling thread until the work before <paramref name="ticket"/> has finished.</summary>
    public void Wait(StreamTicket ticket)
    {
        if (ticket.Index < 0)
            return;
        if (_stream is CudaStream)
            CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.SynchronizeEvent(_events[ticket.Index]));
        else
            _stream.Synchronize();
    }

    /// <summary>
    /// Makes work enqueued on <paramref name="other"/> after this call wait for <paramref name="ticket"/>: on the device
    /// for CUDA (the host goes on), by a host wait otherwise.
    /// </summary>
    public void MakeWait(AcceleratorStream other, StreamTicket ticket)
    {
        if (ticket.Index < 0)
            return;
        if (_stream is CudaStream && other is CudaStream otherCuda)
            CudaDriver.StreamWaitEvent(otherCuda.StreamPtr, _events[ticket.Index]);
        else
            Wait(ticket);
    }

    public void Dispose()
    {
        foreach (var e in _events)
            if (e != IntPtr.Zero)
                CudaAPI.CurrentAPI.DestroyEvent(e);
    }
}
