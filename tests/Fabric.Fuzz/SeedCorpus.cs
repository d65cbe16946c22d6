using System.Text;
using Fabric.Model;
using Fabric.Pool.Protocol;
using Fabric.Transport;
using Fabric.Transport.Wire;

namespace Fabric.Fuzz;

/// <summary>The small, valid inputs each target's corpus starts from (committed under corpus/).</summary>
public static class SeedCorpus
{
    public static void Write(string directory)
    {
        foreach (var (target, name, bytes) in Seeds())
        {
            Directory.CreateDirectory(Path.Combine(directory, target));
            File.WriteAllBytes(Path.Combine(directory, target, name), bytes);
        }
    }

    public static IEnumerable<(string Target, string Name, byte[] Bytes)> Seeds()
    {
        var hello = new byte[FrameHeader.Size + HelloFrame.Size];
        new FrameHeader(HelloFrame.Size, FrameKind.Hello, 0, 0, 0).Write(hello);
        new HelloFrame(HelloFrame.FabricMagic, HelloFrame.CurrentVersion, 0, 0).Write(hello.AsSpan(FrameHeader.Size));
        yield return ("frame", "hello-auth-catalog", [.. hello, .. Control(PoolMessageTypes.Authenticate, 1, ControlMessage.Create(PoolMessageTypes.Authenticate, new AuthenticateRequest("alice:s3cret")).Body.ToArray()),
            .. Control(PoolMessageTypes.Catalog, 2, ControlMessage.Create(PoolMessageTypes.Catalog, new CatalogRequest()).Body.ToArray())]);
        var read = new byte[FrameHeader.Size + ReadFrame.Size];
        new FrameHeader(ReadFrame.Size, FrameKind.Read, 0, 0, 3).Write(read);
        new ReadFrame(1, 4096, 0x1234, 8192).Write(read.AsSpan(FrameHeader.Size));
        yield return ("frame", "read", read);
        yield return ("frame", "error-reply", Control(ControlTypes.Error, 4, ControlMessage.Create(ControlTypes.Error, new ControlError(ControlErrorCode.Unauthorized, "unauthorized")).Body.ToArray()));

        var part = new ExpertPart(0, [4, 8], TensorDtype.BF16, 64);
        var catalog = new CatalogReply(ModelPresets.Tiny, [new RegionInfo(1, 42, 8192)],
            [new ExpertEntry(0, 0, 1, 0, 192, 7, part, part with { Offset = 64 }, part with { Offset = 128 })],
            [new DenseEntry("model.norm.weight", 1, 4096, 64, [32], TensorDtype.BF16, 9)]);
        yield return ("catalog", "tiny", ControlMessage.Create(PoolMessageTypes.CatalogReplyType, catalog).Body.ToArray());

        yield return ("safetensors", "two-tensors", Encoding.UTF8.GetBytes(
            """{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[4],"data_offsets":[12,28]}}"""));
    }

    private static byte[] Control(ushort type, ulong id, byte[] body)
    {
        var frame = new byte[FrameHeader.Size + body.Length];
        new FrameHeader((uint)body.Length, FrameKind.Control, 0, type, id).Write(frame);
        body.CopyTo(frame, FrameHeader.Size);
        return frame;
    }
}
