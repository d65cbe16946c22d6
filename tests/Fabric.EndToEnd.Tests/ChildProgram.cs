using System.Diagnostics;

namespace Fabric.EndToEnd.Tests;

/// <summary>Runs one of Fabric's programs (fabric-pool, fabric-engine, fabric-sim, fabric-bench) to completion as a child process.</summary>
public static class ChildProgram
{
    /// <summary>Runs <c>dotnet PROGRAM.dll ARGS</c> from beside the test assembly: (exit code, stdout, stderr); at most 60 s.</summary>
    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string program, string arguments, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo("dotnet", $"\"{Path.Combine(AppContext.BaseDirectory, program + ".dll")}\" {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{program} {arguments} did not exit within 60 s; stdout [{await stdout}] stderr [{await stderr}]");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Bad input: exit 2, nothing on stdout, and <paramref name="sentence"/> alone on stderr.</summary>
    public static void AssertRefused((int Code, string Stdout, string Stderr) run, string sentence)
    {
        Assert.Equal(2, run.Code);
        Assert.Equal(sentence, run.Stderr.Trim());
        Assert.Equal("", run.Stdout.Trim());
    }
}
