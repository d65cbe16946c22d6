using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Common.Native;

/// <summary>
/// Hands an open descriptor to the process at the other end of a connected Unix stream socket: one byte of data
/// carrying the descriptor as SCM_RIGHTS ancillary data. The byte keeps the two sides in step on the stream.
/// </summary>
public static unsafe class DescriptorPassing
{
    private const byte Marker = (byte)'F';

    /// <summary>Sends <paramref name="descriptor"/> over <paramref name="socket"/>; throws <see cref="IOException"/> on failure.</summary>
    public static void Send(SafeHandle socket, SafeHandle descriptor)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(descriptor);
        var added = false;
        try
        {
            descriptor.DangerousAddRef(ref added);
            var data = Marker;
            var vector = new LibC.IoVector { Base = (nint)(&data), Length = 1 };
            var control = stackalloc byte[LibC.ControlMessageHeader.OneDescriptorSpace];
            new Span<byte>(control, LibC.ControlMessageHeader.OneDescriptorSpace).Clear();
            var header = (LibC.ControlMessageHeader*)control;
            header->Length = LibC.ControlMessageHeader.OneDescriptorLength;
            header->Level = LibC.SolSocket;
            header->Type = LibC.ScmRights;
            *(int*)(control + LibC.ControlMessageHeader.DataOffset) = (int)descriptor.DangerousGetHandle();
            var message = new LibC.MessageHeader
            {
                Vectors = &vector,
                VectorCount = 1,
                Control = (nint)control,
                ControlLength = LibC.ControlMessageHeader.OneDescriptorSpace,
            };
            if (LibC.SendMessage(socket, &message, LibC.MsgNoSignal) != 1)
                throw new IOException($"Cannot pass a descriptor over the socket: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        finally
        {
            if (added)
                descriptor.DangerousRelease();
        }
    }

    /// <summary>
    /// Receives the descriptor <see cref="Send"/> passed, waiting at most <paramref name="timeout"/> for it. The caller
    /// owns the handle returned. A peer that closes, sends something else or nothing in time throws
    /// <see cref="IOException"/>.
    /// </summary>
    public static SafeFileHandle Receive(SafeHandle socket, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            var poll = new LibC.PollFd { Fd = (int)socket.DangerousGetHandle(), Events = LibC.PollIn };
            var ready = LibC.Poll(&poll, 1, (int)Math.Clamp(timeout.TotalMilliseconds, 0, int.MaxValue));
            if (ready < 0)
                throw new IOException($"Cannot wait for the server's descriptor: {Marshal.GetLastPInvokeErrorMessage()}");
            if (ready == 0)
                throw new IOException($"The server passed no descriptor within {timeout.TotalSeconds:0.#} s.");
            byte data = 0;
            var vector = new LibC.IoVector { Base = (nint)(&data), Length = 1 };
            var control = stackalloc byte[LibC.ControlMessageHeader.OneDescriptorSpace];
            var message = new LibC.MessageHeader
            {
                Vectors = &vector,
                VectorCount = 1,
                Control = (nint)control,
                ControlLength = LibC.ControlMessageHeader.OneDescriptorSpace,
            };
            var received = LibC.ReceiveMessage(socket, &message, LibC.MsgControlCloseOnExec | LibC.MsgDontWait);
            if (received < 0)
                throw new IOException($"Cannot receive the server's descriptor: {Marshal.GetLastPInvokeErrorMessage()}");
            var header = (LibC.ControlMessageHeader*)control;
            var carriesOne = message.ControlLength >= LibC.ControlMessageHeader.OneDescriptorLength
                && header->Level == LibC.SolSocket && header->Type == LibC.ScmRights
                && header->Length >= LibC.ControlMessageHeader.OneDescriptorLength;
            var fd = carriesOne ? *(int*)(control + LibC.ControlMessageHeader.DataOffset) : -1;
            var file = fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : null;
            if (received != 1 || data != Marker || file is null)
            {
                file?.Dispose();
                throw new IOException(received == 0 ? "The server closed the socket before passing its descriptor." : "The server sent something other than its descriptor.");
            }
            return file;
        }
        finally
        {
            if (added)
                socket.DangerousRelease();
        }
    }
}
