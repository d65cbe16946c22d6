using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Fabric.Bench.Serve;

/// <summary>A <c>fabric-engine serve</c> child process on 127.0.0.1 port 0, ready once it printed "ready"; stopped with SIGTERM.</summary>
internal sealed partial class ServeChild : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<Uri> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _stderr = [];
    private Uri? _address;

    private ServeChild(string arguments)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "fabric-engine.dll");
        var info = new ProcessStartInfo("dotnet", $"\"{dll}\" serve --listen http://127.0.0.1:0 {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process = new Process { StartInfo = info, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                _ready.TrySetException(new InvalidOperationException($"fabric-engine serve exited: {string.Join(" ", _stderr)}"));
            else if (e.Data.StartsWith("listening ", StringComparison.Ordinal))
                _address = new Uri(e.Data["listening ".Length..]);
            else if (e.Data.StartsWith("ready", StringComparison.Ordinal) && _address is not null)
                _ready.TrySetResult(_address);
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

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromMinutes(10) };

    public static async Task<ServeChild> StartAsync(string arguments, CancellationToken cancellationToken)
    {
        var child = new ServeChild(arguments);
        try
        {
            child.Http.BaseAddress = await child._ready.Task.WaitAsync(TimeSpan.FromMinutes(2), cancellationToken).ConfigureAwait(false);
            return child;
        }
        catch
        {
            await child.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The value of an unlabelled metric on /metrics.</summary>
    public async Task<double> MetricAsync(string name, CancellationToken cancellationToken)
    {
        var text = await Http.GetStringAsync("/metrics", cancellationToken).ConfigureAwait(false);
        var line = text.Split('\n').First(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 15);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
                await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
