using System.Diagnostics;
using System.Runtime.InteropServices;
using Fabric.Common;

namespace Fabric.Bench.Engine;

/// <summary>
/// A real <c>fabric-pool serve</c> child process on loopback: started with <c>dotnet fabric-pool.dll</c>, ready once it
/// has printed a "listening URI" line per endpoint, stopped with SIGTERM.
/// </summary>
internal sealed partial class PoolChild : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _endpoints = [];
    private readonly List<string> _stderr = [];
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _expected;

    private PoolChild(string arguments, int expected)
    {
        _expected = expected;
        var info = new ProcessStartInfo("dotnet", $"\"{PoolDll()}\" {arguments}")
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
            lock (_endpoints)
            {
                if (e.Data.StartsWith("listening ", StringComparison.Ordinal))
                    _endpoints.Add(e.Data["listening ".Length..].Trim());
                if (_endpoints.Count >= _expected)
                    _ready.TrySetResult();
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (_stderr)
                    _stderr.Add(e.Data);
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The endpoints the pool printed, e.g. tcp://127.0.0.1:40123 and shm:///dev/shm/NAME.</summary>
    public IReadOnlyList<string> Endpoints
    {
        get
        {
            lock (_endpoints)
                return [.. _endpoints];
        }
    }

    /// <summary>The daemon's process id.</summary>
    public int ProcessId => _process.Id;

    public string Endpoint(string scheme) => Endpoints.First(e => e.StartsWith(scheme + "://", StringComparison.Ordinal));

    /// <summary>Starts <c>fabric-pool serve --model DIR --listen tcp://127.0.0.1:0 [--shm PATH] --tokens FILE</c> and waits until it listens.</summary>
    public static async Task<PoolChild> StartAsync(string modelDirectory, string tokensFile, string? shmPath, CancellationToken cancellationToken)
    {
        var arguments = $"serve --model \"{modelDirectory}\" --listen tcp://127.0.0.1:0 --tokens \"{tokensFile}\"" + (shmPath is null ? "" : $" --shm {shmPath}");
        var child = new PoolChild(arguments, shmPath is null ? 1 : 2);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(120));
        try
        {
            await child._ready.Task.WaitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
        if (child.Endpoints.Count < child._expected)
        {
            string error;
            lock (child._stderr)
                error = string.Join(" ", child._stderr.TakeLast(3));
            await child.DisposeAsync();
            throw new FabricException($"fabric-pool did not start serving {modelDirectory}: {(error.Length > 0 ? error : "it printed no listening line")}");
        }
        return child;
    }

    private static string PoolDll()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "fabric-pool.dll");
        if (File.Exists(beside))
            return beside;
        throw new FabricException($"fabric-pool.dll is not beside {AppContext.BaseDirectory}; build the solution first (./fabric builds it).");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 15);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
