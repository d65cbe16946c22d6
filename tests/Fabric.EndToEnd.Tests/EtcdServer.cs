using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Fabric.EndToEnd.Tests;

/// <summary>
/// A real etcd (Debian etcd-server, installed by ./fabric test) on 127.0.0.1 with free ports and a temporary data
/// directory; killed and its directory removed on dispose.
/// </summary>
public sealed class EtcdServer : IDisposable
{
    private readonly Process _process;
    private readonly string _dataDirectory;

    private EtcdServer(Process process, string dataDirectory, int port)
    {
        _process = process;
        _dataDirectory = dataDirectory;
        Port = port;
    }

    /// <summary>The etcd binary, or null when it is not installed.</summary>
    public static string? Binary => new[] { "/usr/bin/etcd", "/usr/local/bin/etcd" }.FirstOrDefault(File.Exists);

    public int Port { get; }

    /// <summary>http://127.0.0.1:PORT, for pools (--etcd).</summary>
    public string Url => $"http://127.0.0.1:{Port}";

    /// <summary>etcd://127.0.0.1:PORT/MODEL, for engines (--discover).</summary>
    public string Discover(string model) => $"etcd://127.0.0.1:{Port}/{model}";

    /// <summary>Starts etcd and waits (at most 20 s) until it answers on its client port.</summary>
    public static async Task<EtcdServer> StartAsync()
    {
        var binary = Binary ?? throw new InvalidOperationException("etcd is not installed.");
        var data = Path.Combine(Path.GetTempPath(), "fabric-etcd-" + Guid.NewGuid().ToString("N")[..12]);
        var (client, peer) = (FreePort(), FreePort());
        var info = new ProcessStartInfo(binary,
            $"--name fabric-test --data-dir {data} --listen-client-urls http://127.0.0.1:{client} --advertise-client-urls http://127.0.0.1:{client} " +
            $"--listen-peer-urls http://127.0.0.1:{peer} --initial-advertise-peer-urls http://127.0.0.1:{peer} --initial-cluster fabric-test=http://127.0.0.1:{peer}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new EtcdServer(process, data, client);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(20))
        {
            if (process.HasExited)
                break;
            try
            {
                if ((await http.GetStringAsync($"{server.Url}/health")).Contains("true", StringComparison.Ordinal))
                    return server;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        server.Dispose();
        throw new InvalidOperationException("etcd did not become healthy within 20 s.");
    }

    /// <summary>Kills etcd (as a crash would); the data directory stays until dispose.</summary>
    public void Stop()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        Stop();
        _process.Dispose();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A test that needs a real etcd: skipped, with the reason, where etcd-server is not installed.</summary>
public sealed class EtcdFactAttribute : FactAttribute
{
    public EtcdFactAttribute()
    {
        if (EtcdServer.Binary is null)
            Skip = "etcd is not installed here; './fabric test' installs Debian's etcd-server (needs root's apt-get).";
    }
}
