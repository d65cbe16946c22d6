using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Fabric.EndToEnd.Tests;

/// <summary>A real fabric-pool child process: started with arguments, its stdout lines collected, stopped with SIGTERM.</summary>
public sealed partial class PoolProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _expectedEndpoints;

    private PoolProcess(string arguments, int expectedEndpoints, bool expectMetrics)
    {
        _expectedEndpoints = expectedEndpoints + (expectMetrics ? 1 : 0);
        var info = new ProcessStartInfo("dotnet", $"\"{Path.Combine(AppContext.BaseDirectory, "fabric-pool.dll")}\" {arguments}")
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
                if (_lines.Count(l => l.StartsWith("listening ", StringComparison.Ordinal) || l.StartsWith("metrics ", StringComparison.Ordinal)) >= _expectedEndpoints)
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

    /// <summary>Every stdout line so far.</summary>
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

    public bool HasExited => _process.HasExited;

    /// <summary>The daemon's process id, resident memory in bytes (VmRSS) and open descriptors, now.</summary>
    public (int Pid, long RssBytes, int OpenFiles) Footprint()
    {
        var rss = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        var kib = long.Parse(rss["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        return (_process.Id, kib * 1024, Directory.GetFileSystemEntries($"/proc/{_process.Id}/fd").Length);
    }

    /// <summary>The endpoints printed as "listening URI".</summary>
    public IReadOnlyList<string> Endpoints => Lines.Where(l => l.StartsWith("listening ", StringComparison.Ordinal)).Select(l => l["listening ".Length..]).ToList();

    public string Endpoint(string scheme) => Endpoints.Single(e => e.StartsWith(scheme + "://", StringComparison.Ordinal));

    /// <summary>The metrics URL printed as "metrics URL".</summary>
    public string MetricsUrl => Lines.Single(l => l.StartsWith("metrics ", StringComparison.Ordinal))["metrics ".Length..];

    /// <summary>Starts <c>fabric-pool ARGS</c> and waits until it printed <paramref name="endpoints"/> listening lines (and a metrics line).</summary>
    public static async Task<PoolProcess> StartAsync(string arguments, int endpoints, bool metrics = false)
    {
        var pool = new PoolProcess(arguments, endpoints, metrics);
        var finished = await Task.WhenAny(pool._ready.Task, pool._process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
        if (!pool._ready.Task.IsCompleted || pool._process.HasExited)
        {
            await pool.DisposeAsync();
            throw new InvalidOperationException($"fabric-pool did not become ready: stdout [{string.Join(" | ", pool.Lines)}] stderr [{pool.Stderr}]");
        }
        return pool;
    }

    /// <summary>Runs <c>fabric-pool ARGS</c> to completion: (exit code, stdout, stderr).</summary>
    public static Task<(int Code, string Stdout, string Stderr)> RunAsync(string arguments) =>
        ChildProgram.RunAsync("fabric-pool", arguments);

    /// <summary>Sends SIGTERM and waits for the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        if (Kill(_process.Id, 15) != 0)
            throw new InvalidOperationException("kill(SIGTERM) failed.");
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
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
