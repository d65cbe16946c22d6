using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Fabric.Common.Native;
using Fabric.Transport.Wire;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Transport.Shm;

/// <summary>
/// A client of <c>shm://PATH</c>: maps the regions read-only (the sealed memory file the server passes on its control
/// socket, or the DAX device) and copies straight from them. The key is
/// checked here against the key hash in the header (file permissions are the real access control for load/store;
/// the key guards against mistakes); the first read of each region asks the server, once, whether the client's session may
/// read it. When the control socket closes, every later read ends with <see cref="ReadStatus.PeerGone"/>.
/// </summary>
public sealed class ShmFabricClient : IFabricClient
{
    private readonly SafeFileHandle _file;
    private readonly MappedMemory _mapping;
    private readonly FramedClient _control;
    private readonly Dictionary<uint, int> _indexById;
    private readonly ShmRegionEntry[] _rows;
    private readonly bool[] _granted;
    private readonly Task<ReadStatus>?[] _grants;
    private readonly Lock _grantLock = new();
    // The last key per region whose hash matched (set only once _hasGoodKey is true), so most reads skip hashing.
    private readonly ulong[] _lastGoodKey;
    private readonly bool[] _hasGoodKey;
    private readonly ulong _generation;
    private const int NoSuchFile = 2;

    private ShmFabricClient(FabricEndpoint endpoint, SafeFileHandle file, MappedMemory mapping, FramedClient control, ShmRegionEntry[] rows, ulong generation)
    {
        Endpoint = endpoint;
        _file = file;
        _mapping = mapping;
        _control = control;
        _rows = rows;
        _generation = generation;
        _granted = new bool[rows.Length];
        _grants = new Task<ReadStatus>?[rows.Length];
        _lastGoodKey = new ulong[rows.Length];
        _hasGoodKey = new bool[rows.Length];
        _indexById = new Dictionary<uint, int>(rows.Length);
        for (var i = 0; i < rows.Length; i++)
            _indexById[rows[i].Id] = i;
    }

    public FabricEndpoint Endpoint { get; }

    public bool IsConnected => _control.IsConnected;

    /// <summary>
    /// Reads <paramref name="endpoint"/>'s header, connects to the control socket it names and maps the regions read-only:
    /// for a file, the sealed memory file the server passes on that socket (the file itself is only read, never
    /// mapped, so shrinking it harms no one); for a DAX device, or a file a pool serves in place (a read-only bank image on
    /// /dev/shm, whose header says so), the file itself. A missing file, a bad header or a server
    /// that is not running throws <see cref="EndpointException"/>.
    /// </summary>
    public static async ValueTask<IFabricClient> ConnectAsync(FabricEndpoint endpoint, FabricClientOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (endpoint.Scheme != "shm")
            throw new EndpointException($"{endpoint} is not an shm:// endpoint.");
        options ??= FabricClientOptions.Default;
        var file = OpenWithoutBlocking(endpoint, out var length, out var dax);

        MappedMemory? mapping = null;
        FramedClient? control = null;
        SafeFileHandle? memory = null;
        try
        {
            if (length < ShmHeader.TableOffset)
                throw new EndpointException($"Cannot use {endpoint}: it has no Fabric header ({length} bytes).");
            ulong generation;
            string controlPath;
            ShmRegionEntry[] rows;
            string error;
            if (dax)
            {
                mapping = MappedMemory.Map(file, length, writable: false);
                if (!TryParseHeader(mapping, out generation, out controlPath, out rows, out error))
                    throw new EndpointException($"Cannot use {endpoint}: {error}.");
                control = await ConnectControlAsync(endpoint, controlPath, options, null, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var preamble = new byte[ShmHeader.TableOffset];
                var read = RandomAccess.Read(file, preamble, 0);
                if (!ShmHeader.TryParsePreamble(preamble.AsSpan(0, read), out generation, out controlPath, out var sealedMemory, out error))
                    throw new EndpointException($"Cannot use {endpoint}: {error}.");
                if (!sealedMemory)
                {
                    // A file served in place (a bank image on /dev/shm): its regions are in the file itself, mapped like a DAX device.
                    mapping = MappedMemory.Map(file, length, writable: false);
                    if (!TryParseHeader(mapping, out generation, out controlPath, out rows, out error))
                        throw new EndpointException($"Cannot use {endpoint}: {error}.");
                    control = await ConnectControlAsync(endpoint, controlPath, options, null, cancellationToken).ConfigureAwait(false);
                    if (control.Generation != generation)
                        throw new EndpointException($"Cannot use {endpoint}: the file was recreated while connecting; try again.");
                    return new ShmFabricClient(endpoint, file, mapping, control, rows, generation);
                }
                control = await ConnectControlAsync(endpoint, controlPath, options, (socket, left) => memory = DescriptorPassing.Receive(socket.SafeHandle, left), cancellationToken).ConfigureAwait(false);
                mapping = MapSealed(endpoint, memory!);
                var headerGeneration = generation;
                if (!TryParseHeader(mapping, out generation, out _, out rows, out error))
                    throw new EndpointException($"Cannot use {endpoint}: the server's memory file: {error}.");
                if (generation != headerGeneration)
                    throw new EndpointException($"Cannot use {endpoint}: the file was recreated while connecting; try again.");
                file.Dispose();
                file = memory!;
                memory = null;
            }
            if (control.Generation != generation)
                throw new EndpointException($"Cannot use {endpoint}: the file was recreated while connecting; try again.");
            return new ShmFabricClient(endpoint, file, mapping, control, rows, generation);
        }
        catch (IOException e)
        {
            if (control is not null)
                await control.DisposeAsync().ConfigureAwait(false);
            mapping?.Dispose();
            memory?.Dispose();
            file.Dispose();
            throw new EndpointException($"Cannot map {endpoint}: {e.Message.TrimEnd('.')}.", e);
        }
        catch
        {
            if (control is not null)
                await control.DisposeAsync().ConfigureAwait(false);
            mapping?.Dispose();
            memory?.Dispose();
            file.Dispose();
            throw;
        }
    }

    private static async Task<FramedClient> ConnectControlAsync(FabricEndpoint endpoint, string controlPath, FabricClientOptions options, Action<Socket, TimeSpan>? beforeHandshake, CancellationToken cancellationToken)
    {
        if (!File.Exists(controlPath))
            throw new EndpointException($"Cannot connect to {endpoint}: its control socket {controlPath} is missing (is the server running?).");
        return await FramedClient.ConnectAsync(new UnixDomainSocketEndPoint(controlPath), endpoint, options, beforeHandshake, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Maps the memory file the server passed, read-only, after checking that its size can never change.</summary>
    private static MappedMemory MapSealed(FabricEndpoint endpoint, SafeFileHandle memory)
    {
        const int SizeSeals = LibC.SealShrink | LibC.SealGrow;
        if ((SealedMemoryFile.Seals(memory) & SizeSeals) != SizeSeals)
            throw new EndpointException($"Cannot use {endpoint}: the server passed a memory file whose size is not sealed.");
        var size = RandomAccess.GetLength(memory);
        if (size < ShmHeader.TableOffset)
            throw new EndpointException($"Cannot use {endpoint}: the server's memory file has no Fabric header ({size} bytes).");
        return MappedMemory.Map(memory, size, writable: false);
    }

    /// <summary>
    /// Opens the endpoint's file read-only without ever waiting: the type is checked before opening and again on the
    /// open descriptor (opened non-blocking, so a fifo swapped in between cannot hold it up). Only a regular file or
    /// a DAX character device is accepted.
    /// </summary>
    private static unsafe SafeFileHandle OpenWithoutBlocking(FabricEndpoint endpoint, out long length, out bool dax)
    {
        var path = endpoint.Path;
        LibC.StatxBuffer status;
        if (LibC.Statx(LibC.AtCurrentDirectory, path, 0, LibC.StatxType, &status) != 0)
            throw OpenFailed(endpoint, Marshal.GetLastPInvokeError());
        CheckType(endpoint, status.Mode);
        var fd = LibC.Open(path, LibC.OpenReadOnly | LibC.OpenNonBlocking | LibC.OpenCloseOnExec);
        if (fd < 0)
            throw OpenFailed(endpoint, Marshal.GetLastPInvokeError());
        var file = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            if (LibC.Statx(fd, "", LibC.AtEmptyPath, LibC.StatxType | LibC.StatxSize, &status) != 0)
                throw OpenFailed(endpoint, Marshal.GetLastPInvokeError());
            dax = CheckType(endpoint, status.Mode);
            length = dax ? ShmPaths.DaxSize(path) : (long)status.Size;
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Refuses anything but a regular file or a DAX character device; true for a DAX device.</summary>
    private static bool CheckType(FabricEndpoint endpoint, int mode)
    {
        var type = mode & LibC.FileTypeMask;
        if (type == LibC.FileTypeRegular)
            return false;
        if (type == LibC.FileTypeCharacterDevice && ShmPaths.IsDax(endpoint.Path))
            return true;
        var what = type switch
        {
            LibC.FileTypeFifo => "a fifo",
            LibC.FileTypeDirectory => "a directory",
            LibC.FileTypeSocket => "a socket",
            LibC.FileTypeCharacterDevice => "a character device that is not a DAX device",
            LibC.FileTypeBlockDevice => "a block device",
            _ => "a special file",
        };
        throw new EndpointException($"Cannot use {endpoint}: {endpoint.Path} is {what}, not a regular file or a DAX device (/dev/daxX.Y).");
    }

    private static EndpointException OpenFailed(FabricEndpoint endpoint, int errno) => errno == NoSuchFile
        ? new EndpointException($"Cannot open {endpoint}: the file does not exist (is a server running?).")
        : new EndpointException($"Cannot open {endpoint}: {Marshal.GetPInvokeErrorMessage(errno).TrimEnd('.')}.");

    private static unsafe bool TryParseHeader(MappedMemory mapping, out ulong generation, out string controlPath, out ShmRegionEntry[] rows, out string error) =>
        ShmHeader.TryParse(mapping.Pointer, mapping.Length, out generation, out controlPath, out rows, out error);

    public ValueTask<ReadStatus> ReadAsync(ReadRequest request, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled<ReadStatus>(cancellationToken);
        var status = Check(request, out var index);
        if (status != ReadStatus.Ok)
            return new ValueTask<ReadStatus>(status);
        if (!Volatile.Read(ref _granted[index]))
            return GrantThenReadAsync(request, index, cancellationToken);
        return new ValueTask<ReadStatus>(Copy(request, index));
    }

    private ReadStatus Check(in ReadRequest request, out int index)
    {
        index = -1;
        if (!_control.IsConnected || _mapping.IsClosed)
            return ReadStatus.PeerGone;
        if (!_indexById.TryGetValue(request.RegionId, out index))
            return ReadStatus.UnknownRegion;
        var row = _rows[index];
        if (!Volatile.Read(ref _hasGoodKey[index]) || request.Key != Volatile.Read(ref _lastGoodKey[index]))
        {
            if (ShmHeader.HashKey(request.Key, _generation) != row.KeyHash)
                return ReadStatus.AccessDenied;
            Volatile.Write(ref _lastGoodKey[index], request.Key);
            Volatile.Write(ref _hasGoodKey[index], true);
        }
        return request.Offset < 0 || request.Offset > row.Length - request.Length ? ReadStatus.OutOfRange : ReadStatus.Ok;
    }

    private unsafe ReadStatus Copy(in ReadRequest request, int index)
    {
        // A reference on the mapping keeps DisposeAsync on another thread from unmapping it under the copy.
        var referenced = false;
        try
        {
            _mapping.DangerousAddRef(ref referenced);
            // A DAX device re-formatted by a new server has a new generation: this client's view is stale.
            if (ShmHeader.ReadGeneration(_mapping.Pointer) != _generation)
                return ReadStatus.Failed;
            new ReadOnlySpan<byte>(_mapping.Pointer + _rows[index].Offset + request.Offset, request.Length).CopyTo(request.Destination.Span);
        }
        catch (ObjectDisposedException)
        {
            return ReadStatus.PeerGone;
        }
        finally
        {
            if (referenced)
                _mapping.DangerousRelease();
        }
        // The server may have died during the copy; the bytes are still right (the mapping outlives it), so Ok stands.
        return ReadStatus.Ok;
    }

    /// <summary>
    /// Asks the server once per region whether the client's session may read it; concurrent first reads share the question.
    /// A refusal is forgotten, so a session that authenticates later asks again.
    /// </summary>
    private async ValueTask<ReadStatus> GrantThenReadAsync(ReadRequest request, int index, CancellationToken cancellationToken)
    {
        Task<ReadStatus> grant;
        lock (_grantLock)
            grant = _grants[index] ??= AskGrantAsync(request.RegionId, request.Key);
        var status = await grant.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (status != ReadStatus.Ok)
        {
            lock (_grantLock)
            {
                if (_grants[index] == grant)
                    _grants[index] = null;
            }
            return status;
        }
        Volatile.Write(ref _granted[index], true);
        status = Check(request, out index);
        return status == ReadStatus.Ok ? Copy(request, index) : status;
    }

    private async Task<ReadStatus> AskGrantAsync(uint regionId, ulong key)
    {
        var body = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(body, regionId);
        BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(4), key);
        ControlMessage reply;
        try
        {
            reply = await _control.CallAsync(new ControlMessage(InternalControlTypes.RegionAccess, body), CancellationToken.None).ConfigureAwait(false);
        }
        catch (PeerGoneException)
        {
            return ReadStatus.PeerGone;
        }
        catch (TimeoutException)
        {
            return ReadStatus.TimedOut;
        }
        catch (ControlException)
        {
            return ReadStatus.Failed;
        }
        return reply.Body.Length == 1 && reply.Body.Span[0] <= (byte)ReadStatus.Failed ? (ReadStatus)reply.Body.Span[0] : ReadStatus.Failed;
    }

    public ValueTask ReadBatchAsync(ReadOnlyMemory<ReadRequest> requests, Memory<ReadStatus> statuses, CancellationToken cancellationToken = default) =>
        ReadBatch.RunAsync(this, requests, statuses, cancellationToken);

    public Task<ControlMessage> CallAsync(ControlMessage request, CancellationToken cancellationToken = default) =>
        _control.CallAsync(request, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _control.DisposeAsync().ConfigureAwait(false);
        _mapping.Dispose();
        _file.Dispose();
    }
}
