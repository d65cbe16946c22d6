namespace Fabric.Bench;

/// <summary>
/// One `./fabric bench NAME` command. Implementations are found by reflection, so adding a benchmark is adding a class.
/// Every figure a benchmark prints stands beside a baseline measured in the same run, as a ratio.
/// </summary>
public interface IBenchmark
{
    /// <summary>The word after `./fabric bench`.</summary>
    string Name { get; }

    /// <summary>One line for `./fabric bench --help`.</summary>
    string Summary { get; }

    /// <summary>Runs with the remaining arguments; returns the exit code.</summary>
    Task<int> RunAsync(string[] args, CancellationToken cancellationToken);
}
