using MessagePack;

namespace Fabric.Transport;

/// <summary>
/// One message on the framed control channel that runs beside the data path. Higher layers (catalog, auth)
/// define their own message types; <see cref="Type"/> values below <see cref="ControlTypes.FirstUserType"/> are the
/// transport's own. The body is MessagePack.
/// </summary>
public readonly record struct ControlMessage(ushort Type, ReadOnlyMemory<byte> Body)
{
    /// <summary>Serialises <paramref name="value"/> with MessagePack into a message of <paramref name="type"/>.</summary>
    public static ControlMessage Create<T>(ushort type, T value) =>
        new(type, MessagePackSerializer.Serialize(value, ControlTypes.SerializerOptions));

    /// <summary>
    /// Deserialises the body; a malformed body, or a nil one, throws <see cref="ControlException"/> (MalformedMessage).
    /// Fields inside the body are the caller's to check.
    /// </summary>
    public T Read<T>()
    {
        T value;
        try
        {
            value = MessagePackSerializer.Deserialize<T>(Body, ControlTypes.SerializerOptions);
        }
        catch (MessagePackSerializationException e)
        {
            throw new ControlException(ControlErrorCode.MalformedMessage, $"Control message type {Type} has a malformed body: {e.InnerException?.Message ?? e.Message}");
        }
        return value ?? throw new ControlException(ControlErrorCode.MalformedMessage, $"Control message type {Type} has a nil body where a {typeof(T).Name} was expected.");
    }
}

/// <summary>Reserved control message types and the shared serializer settings.</summary>
public static class ControlTypes
{
    /// <summary>A reply that carries a <see cref="ControlError"/> instead of the expected answer.</summary>
    public const ushort Error = 1;

    /// <summary>Types from here up belong to the layers above the transport.</summary>
    public const ushort FirstUserType = 100;

    /// <summary>The largest control frame body either side accepts, in bytes; a larger one is refused.</summary>
    public const int MaxBodyBytes = 16 * 1024 * 1024;

    /// <summary>Untrusted-data security: control frames come from peers we do not trust.</summary>
    public static readonly MessagePackSerializerOptions SerializerOptions =
        MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);
}

/// <summary>The body of a <see cref="ControlTypes.Error"/> reply.</summary>
[MessagePackObject]
public sealed record ControlError([property: Key(0)] ControlErrorCode Code, [property: Key(1)] string Message);
