using Fabric.Transport.Wire;

namespace Fabric.Transport.Control;

/// <summary>
/// Answers one control request on the server side: the transport's own types first, then the user's handler.
/// Never throws: every failure becomes a <see cref="ControlTypes.Error"/> reply and the session stays open.
/// </summary>
internal static class ControlDispatcher
{
    public static async ValueTask<ControlMessage> AnswerAsync(
        ServerSession session, RegionStore store, FabricServerOptions options, ControlMessage request, CancellationToken cancellationToken)
    {
        try
        {
            if (request.Type == InternalControlTypes.RegionAccess)
                return AnswerRegionAccess(session, store, options, request);
            if (request.Type < ControlTypes.FirstUserType || options.ControlHandler is null)
                throw new ControlException(ControlErrorCode.UnknownMessageType, $"The server does not understand control message type {request.Type}.");
            return await options.ControlHandler.HandleAsync(session, request, cancellationToken).ConfigureAwait(false);
        }
        catch (ControlException e)
        {
            return Error(e.Code, e.Message);
        }
        catch (OperationCanceledException)
        {
            return Error(ControlErrorCode.Internal, "The server is shutting down.");
        }
#pragma warning disable CA1031 // A handler's bug must not take the session down; the client hears about it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return Error(ControlErrorCode.Internal, $"The server failed to answer control message type {request.Type}: {e.Message}");
        }
    }

    public static ControlMessage Error(ControlErrorCode code, string message) =>
        ControlMessage.Create(ControlTypes.Error, new ControlError(code, message));

    /// <summary>Turns an error reply into the exception the caller sees.</summary>
    public static ControlException ToException(ControlMessage reply)
    {
        try
        {
            var error = reply.Read<ControlError>();
            return new ControlException(error.Code, error.Message);
        }
        catch (ControlException e)
        {
            return e;
        }
    }

    private static ControlMessage AnswerRegionAccess(ServerSession session, RegionStore store, FabricServerOptions options, ControlMessage request)
    {
        var body = request.Body.Span;
        if (body.Length != 12)
            throw new ControlException(ControlErrorCode.MalformedMessage, "A region access request must be 12 bytes.");
        var id = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(body);
        var key = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(body[4..]);
        var region = store.Find(id);
        var status = region is null ? ReadStatus.UnknownRegion
            : region.Key != key ? ReadStatus.AccessDenied
            : options.Authorize is { } authorize && !authorize(session, region) ? ReadStatus.AccessDenied
            : ReadStatus.Ok;
        if (status != ReadStatus.Ok)
        {
            session.CountRefused();
            options.ReadServed?.Invoke(session, status, 0);
        }
        return new ControlMessage(InternalControlTypes.RegionAccess, new[] { (byte)status });
    }
}
