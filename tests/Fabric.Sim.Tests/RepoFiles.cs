using System.Runtime.CompilerServices;

namespace Fabric.Sim.Tests;

/// <summary>The repository the tests read topologies, workloads and data from, found from this source file.</summary>
internal static class RepoFiles
{
    public static string Root { get; } = Find();

    private static string Find([CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", ".."));
}
