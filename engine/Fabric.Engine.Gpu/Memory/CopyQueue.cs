using ILGPU;
using ILGPU.Runtime;

namespace Fabric.Engine.Gpu.Memory;

/// <summary>
/// Host→device copies on a dedicated copy stream, so that the compute stream runs layer L while the experts of
/// layer L+1 move from pinned staging into their slots. Each enqueue returns a ticket to wait on (host) or to
/// make the compute stream wait on (device). Single producer: call from one thread.
/// </summary>
public sealed class CopyQueue : IDisposable
{
    private readonly AcceleratorStream _stream;
    private readonly StreamFences _fences;

    /// <summary>Creates the copy stream on <paramref name="accelerator"/> (not owned).</summary>
    public CopyQueue(Accelerator accelerator, int ticketRing = 64)
    {
        _stream = accelerator.CreateStream();
        _fences = new StreamFences(_stream, ticketRing);
    }

    /// <summary>The copy stream.</summary>
    public AcceleratorStream Stream => _stream;

    /// <summary>Bytes enqueued so far.</summary>
    public long BytesEnqueued { get; private set; }

    /// <summary>
    /// Enqueues a copy of destination.Length bytes from <paramref name="source"/> at <paramref name="sourceOffset"/>
    /// into <paramref name="destination"/> (a slot). The staging bytes must stay untouched until the ticket completes.
    /// </summary>
    public StreamTicket Enqueue(PinnedStaging source, long sourceOffset, ArrayView<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sourceOffset);
        if (sourceOffset + destination.Length > source.Length)
            throw new ArgumentOutOfRangeException(nameof(destination), $"A copy of {destination.Length} bytes from offset {sourceOffset} overruns the {source.Length}-byte staging buffer.");
        destination.CopyFrom(_stream, source.HostView.SubView(sourceOffset, destination.Length));
        BytesEnqueued += destination.Length;
        return _fences.Record();
    }

    /// <summary>Makes the copy stream wait for <paramref name="ticket"/> of another stream's fences (a slot still being read).</summary>
    public void After(StreamFences other, StreamTicket ticket) => other.MakeWait(_stream, ticket);

    /// <summary>True when the copies before <paramref name="ticket"/> are done.</summary>
    public bool IsComplete(StreamTicket ticket) => _fences.IsComplete(ticket);

    /// <summary>Blocks until the copies before <paramref name="ticket"/> are done.</summary>
    public void Wait(StreamTicket ticket) => _fences.Wait(ticket);

    /// <summary>Makes <paramref name="compute"/> wait for the copies before <paramref name="ticket"/> without blocking the host (CUDA).</summary>
    public void MakeWait(AcceleratorStream compute, StreamTicket ticket) => _fences.MakeWait(compute, ticket);

    /// <summary>Blocks until every enqueued copy is done.</summary>
    public void WaitAll() => _stream.Synchronize();

    public void Dispose()
    {
        _fences.Dispose();
        _stream.Dispose();
    }
}
