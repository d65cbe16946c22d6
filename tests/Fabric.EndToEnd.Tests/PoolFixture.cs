using Fabric.Model;

namespace Fabric.EndToEnd.Tests;

/// <summary>A generated tiny model and a tokens file in a temp directory, plus a unique /dev/shm name; all removed afterwards.</summary>
public sealed class PoolModel : IDisposable
{
    public PoolModel()
    {
        Directory = Path.Combine(Path.GetTempPath(), "fabric-e2e-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(Directory);
        ModelDirectory = Path.Combine(Directory, "model");
        ModelGenerator.Write(ModelDirectory, ModelPresets.Tiny, seed: 99, routerSkew: 1);
        TokensFile = Path.Combine(Directory, "tokens");
        File.WriteAllText(TokensFile, "alice:wonderland\nbob:builder\n");
    }

    private readonly List<string> _shmPaths = [];

    /// <summary>A fresh, unique /dev/shm path; deleted (with its control socket) on dispose.</summary>
    public string NewShmPath()
    {
        var path = "/dev/shm/fabric-e2e-" + Guid.NewGuid().ToString("N")[..16];
        lock (_shmPaths)
            _shmPaths.Add(path);
        return path;
    }

    public string Directory { get; }
    public string ModelDirectory { get; }
    public string TokensFile { get; }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
        lock (_shmPaths)
        {
            foreach (var path in _shmPaths)
                foreach (var stale in System.IO.Directory.GetFiles("/dev/shm", Path.GetFileName(path) + "*"))
                    File.Delete(stale);
        }
    }
}
