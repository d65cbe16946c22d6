using Fabric.Common;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Transport;
using Fabric.Transport.Wire;

namespace Fabric.Fuzz;

/// <summary>
/// The parsers that read bytes from outside, each as a fuzz target: it may refuse its input only with the exception
/// its contract names (<see cref="ControlException"/>, <see cref="FabricException"/>); anything else escapes and is a
/// finding.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Targets by name: frame, catalog, safetensors.</summary>
    public static IReadOnlyDictionary<string, Action<ReadOnlyMemory<byte>>> All { get; } = new Dictionary<string, Action<ReadOnlyMemory<byte>>>(StringComparer.Ordinal)
    {
        ["frame"] = Frames,
        ["catalog"] = Catalog,
        ["safetensors"] = Safetensors,
    };

    /// <summary>
    /// A byte stream as a server or client reads it: 16-byte frame headers, each body by kind (hello, read, a control
    /// message's MessagePack body as an authentication, an error reply and a catalog request).
    /// </summary>
    public static void Frames(ReadOnlyMemory<byte> input)
    {
        var bytes = input;
        while (bytes.Length >= FrameHeader.Size)
        {
            var header = FrameHeader.Parse(bytes.Span);
            bytes = bytes[FrameHeader.Size..];
            if (header.BodyLength > ControlTypes.MaxBodyBytes || header.BodyLength > (uint)bytes.Length)
                return;
            var body = bytes[..(int)header.BodyLength];
            bytes = bytes[(int)header.BodyLength..];
            switch (header.Kind)
            {
                case FrameKind.Hello or FrameKind.HelloReply when body.Length == HelloFrame.Size:
                    _ = HelloFrame.Parse(body.Span);
                    break;
                case FrameKind.Read when body.Length == ReadFrame.Size:
                    _ = ReadFrame.Parse(body.Span);
                    break;
                case FrameKind.Control or FrameKind.ControlReply:
                    var message = new ControlMessage(header.Type, body);
                    Refused<ControlException>(() => message.Read<AuthenticateRequest>());
                    Refused<ControlException>(() => message.Read<CatalogRequest>());
                    Refused<ControlException>(() => Fabric.Transport.Control.ControlDispatcher.ToException(message));
                    break;
            }
        }
    }

    /// <summary>A catalog reply as an engine receives it: MessagePack, then indexed.</summary>
    public static void Catalog(ReadOnlyMemory<byte> input) => Refused<FabricException>(() =>
    {
        var reply = new ControlMessage(PoolMessageTypes.CatalogReplyType, input).Read<CatalogReply>();
        var index = new CatalogIndex(reply);
        _ = index.TryGetExpert(0, 0, out _);
        return index;
    });

    /// <summary>A safetensors header's JSON, bounded by a file of 1 MiB of data after it.</summary>
    public static void Safetensors(ReadOnlyMemory<byte> input) =>
        Refused<CheckpointException>(() => SafetensorsFile.Parse("fuzz.safetensors", input.Span, 8 + input.Length, 8 + input.Length + (1 << 20)));

    private static void Refused<TException>(Func<object?> parse) where TException : Exception
    {
        try
        {
            _ = parse();
        }
        catch (TException)
        {
            // The parser's one way of saying no.
        }
    }
}
