using System.Collections.Concurrent;
using Fabric.Common.Native;
using Fabric.Transport.Rdma.Native;

namespace Fabric.Transport.Rdma;

/// <summary>A connection-manager event, copied out of librdmacm's buffer before it is acknowledged.</summary>
internal readonly unsafe record struct CmEvent(RdmaCmEventType Type, int Status, nint Id, nint ListenId, byte[] PrivateData)
{
    public RdmaCmId* IdPointer => (RdmaCmId*)Id;

    /// <summary>"RDMA_CM_EVENT_REJECTED (status 28)".</summary>
    public override string ToString() => Status == 0 ? Verbs.Describe(Type) : $"{Verbs.Describe(Type)} (status {Status})";
}

/// <summary>
/// One rdma_cm event channel and the thread that reads it. Events are dispatched by the id they concern (a connect
/// request by its listening id) to the handler registered for that id, on this loop's thread.
/// </summary>
internal sealed unsafe class CmEventLoop : IDisposable
{
    private readonly ConcurrentDictionary<nint, Action<CmEvent>> _handlers = new();
    private readonly Thread _thread;
    private volatile bool _stopping;

    public CmEventLoop(string name)
    {
        Channel = new SafeEventChannel(Verbs.CheckPointer(RdmaCm.CreateEventChannel(), "rdma_create_event_channel"));
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public SafeEventChannel Channel { get; }

    /// <summary>Creates an RC (RDMA_PS_TCP) id on this channel.</summary>
    public SafeCmId CreateId()
    {
        RdmaCmId* id;
        Verbs.Check(RdmaCm.CreateId(Channel.Pointer, &id, null, RdmaPortSpace.Tcp), "rdma_create_id");
        return new SafeCmId(id, Channel);
    }

    public void Register(SafeCmId id, Action<CmEvent> handler) => _handlers[(nint)id.Pointer] = handler;

    public void Unregister(SafeCmId id) => _handlers.TryRemove((nint)id.Pointer, out _);

    private void Run()
    {
        var poll = new LibC.PollFd { Fd = Channel.Fd, Events = LibC.PollIn };
        while (!_stopping)
        {
            poll.Revents = 0;
            if (LibC.Poll(&poll, 1, 100) <= 0)
                continue;
            RdmaCmEvent* native;
            if (RdmaCm.GetCmEvent(Channel.Pointer, &native) != 0)
                continue;
            var data = native->Conn.PrivateData != null && native->Conn.PrivateDataLen > 0
                ? new ReadOnlySpan<byte>(native->Conn.PrivateData, native->Conn.PrivateDataLen).ToArray()
                : [];
            var copy = new CmEvent(native->Event, native->Status, (nint)native->Id, (nint)native->ListenId, data);
            RdmaCm.AckCmEvent(native);
            Dispatch(copy);
        }
    }

    private void Dispatch(CmEvent e)
    {
        var key = e.Type == RdmaCmEventType.ConnectRequest ? e.ListenId : e.Id;
        if (!_handlers.TryGetValue(key, out var handler))
        {
            // A connect request nobody listens for any more: refuse it and drop the new id.
            if (e.Type == RdmaCmEventType.ConnectRequest)
            {
                RdmaCm.Reject(e.IdPointer, null, 0);
                RdmaCm.DestroyId(e.IdPointer);
            }
            return;
        }
        try
        {
            handler(e);
        }
        catch (Exception)
        {
            // A handler failure must not stop the loop that every other connection depends on; handlers record their own errors.
        }
    }

    /// <summary>Stops the thread; the channel is destroyed once the last id on it is released.</summary>
    public void Dispose()
    {
        _stopping = true;
        if (Thread.CurrentThread != _thread)
            _thread.Join();
        Channel.Dispose();
    }
}
