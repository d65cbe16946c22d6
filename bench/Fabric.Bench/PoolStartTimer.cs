using System.Diagnostics;
using System.Runtime.InteropServices;
using Fabric.Common;

namespace Fabric.Bench;

/// <summary>
/// Times a real <c>fabric-pool serve</c> child from process start to its first <c>/healthz</c> answer ("ok"), then
/// stops it with SIGTERM. The arguments must not name --metrics; the timer adds <c>--metrics http://127.0.0.1:0</c>.
/// </summary>
internal static partial class PoolStartTimer
{
    /// <summary>Seconds from starting <c>fabric-pool ARGS</c> to its first healthy <c>/healthz</c>; at most two minutes.</summary>
    public static async Task<double> SecondsToHealthyAsync(string arguments, CancellationToken cancellationToken)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "fabric-pool.dll");
        if (!File.Exists(dll))
            throw new FabricException($"fabric-pool.dll is not beside {AppContext.BaseDirectory}; build the solution first (./fabric builds it).");
        var info = new ProcessStartInfo("dotnet", $"\"{dll}\" {arguments} --metrics http://127.0.0.1:0")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var metrics = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var watch = Stopwatch.StartNew();
        using var process = new Process { StartInfo = info };
        var stderr = new List<string>();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                metrics.TrySetException(new FabricException("fabric-pool exited before serving metrics."));
            else if (e.Data.StartsWith("metrics ", StringComparison.Ordinal))
                metrics.TrySetResult(e.Data["metrics ".Length..].Replace("/metrics", "/healthz", StringComparison.Ordinal));
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (stderr)
                    stderr.Add(e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromMinutes(2));
            string url;
            try
            {
                url = await metrics.Task.WaitAsync(timeout.Token);
            }
            catch (FabricException)
            {
                await process.WaitForExitAsync(cancellationToken);
                lock (stderr)
                    throw new FabricException($"fabric-pool {arguments} did not start: {string.Join(" ", stderr.TakeLast(2))}");
            }
            using var http = new HttpClient();
            for (var attempt = 0; attempt < 10_000; attempt++)
            {
                try
                {
                    if ((await http.GetStringAsync(url, timeout.Token)).Trim() == "ok")
                        return watch.Elapsed.TotalSeconds;
                }
                catch (HttpRequestException)
                {
                }
                await Task.Delay(1, timeout.Token);
            }
            throw new FabricException($"fabric-pool {arguments} never answered /healthz.");
        }
        finally
        {
            if (!process.HasExited)
            {
                _ = Kill(process.Id, 15);
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                try
                {
                    await process.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
