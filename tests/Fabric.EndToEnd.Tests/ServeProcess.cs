using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Fabric.EndToEnd.Tests;

/// <summary>A real <c>fabric-engine serve</c> child process on 127.0.0.1 port 0: its address read from stdout, stopped with SIGTERM.</summary>
public sealed partial class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServeProcess(string arguments)
    {
        var info = new ProcessStartInfo("dotnet", $"\"{Path.Combine(AppContext.BaseDirectory, "fabric-engine.dll")}\" serve --listen http://127.0.0.1:0 {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        _process = new Process { StartInfo = info, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                _ready.TrySetResult();
                return;
            }
            lock (_lines)
            {
                _lines.Add(e.Data);
                if (e.Data.StartsWith("ready", StringComparison.Ordinal))
                    _ready.TrySetResult();
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (_stderr)
                    _stderr.AppendLine(e.Data);
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
                return _lines.ToList();
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
                return _stderr.ToString();
        }
    }

    /// <summary>The server's base address, e.g. http://127.0.0.1:41234.</summary>
    public Uri Address => new(Lines.First(l => l.StartsWith("listening ", StringComparison.Ordinal))["listening ".Length..]);

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>Starts <c>fabric-engine serve ARGS</c> and waits until it is ready (at most 60 s).</summary>
    public static async Task<ServeProcess> StartAsync(string arguments)
    {
        var server = new ServeProcess(arguments);
        await Task.WhenAny(server._ready.Task, server._process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
        if (!server._ready.Task.IsCompleted || server._process.HasExited)
        {
            await server.DisposeAsync();
            throw new InvalidOperationException($"fabric-engine serve did not become ready: stdout [{string.Join(" | ", server.Lines)}] stderr [{server.Stderr}]");
        }
        server.Http.BaseAddress = server.Address;
        return server;
    }

    /// <summary>The value of an unlabelled metric on /metrics.</summary>
    public async Task<double> MetricAsync(string name)
    {
        var text = await Http.GetStringAsync("/metrics");
        var line = text.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Sends SIGTERM.</summary>
    public void Terminate()
    {
        if (Kill(_process.Id, 15) != 0)
            throw new InvalidOperationException("kill(SIGTERM) failed.");
    }

    /// <summary>Waits for the exit code (at most <paramref name="timeout"/>).</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
