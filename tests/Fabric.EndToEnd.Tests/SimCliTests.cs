namespace Fabric.EndToEnd.Tests;

/// <summary>fabric-sim as a child process: a run on a shipped topology, and bad input as one sentence.</summary>
public sealed class SimCliTests
{
    private static string Repo([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", ".."));

    private static Task<(int Code, string Stdout, string Stderr)> SimAsync(string arguments) =>
        ChildProgram.RunAsync("fabric-sim", arguments, workingDirectory: Repo());

    [Theory]
    [InlineData("", "max-min")]
    [InlineData("--sharing fifo", "fifo")]
    [InlineData("--sharing fifo --threads 3", "fifo")]
    public async Task Run_LoopbackTiny_PrintsTokensPerSecondAndWritesJson(string option, string sharing)
    {
        var json = Path.GetTempFileName();
        try
        {
            var (code, output, error) = await SimAsync($"run --topology topologies/loopback.yaml --workload topologies/workloads/loopback-tiny.yaml {option} --json \"{json}\"");
            Assert.Equal(0, code);
            Assert.Equal("", error); // a short run shows no progress when stderr is not a terminal
            Assert.Contains("tokens/s", output, StringComparison.Ordinal);
            Assert.Contains("busiest links", output, StringComparison.Ordinal);
            // Piped, a table row stays one line (Spectre's 80-column default would wrap this header).
            Assert.Contains(output.Split('\n'), l => l.Contains("│ engine", StringComparison.Ordinal) && l.Contains("prefetch prec.", StringComparison.Ordinal));
            using var doc = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(json));
            Assert.Equal(32, doc.RootElement.GetProperty("tokens").GetInt64());
            Assert.Equal(sharing, doc.RootElement.GetProperty("sharing").GetString());
            Assert.Equal(sharing == "fifo", output.Contains("links: first come, first served (fifo)", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public async Task ImportHwloc_PrintsItsSummary_AndWritesTheTopologyAndJson()
    {
        var dir = Directory.CreateTempSubdirectory("fabric-e2e-hwloc-");
        try
        {
            var xml = Path.Combine(Repo(), "tests", "Fabric.Sim.Tests", "TestData", "hwloc2-plx16.xml");
            var (code, output, error) = await SimAsync($"import-hwloc \"{xml}\" -o \"{dir.FullName}/t.yaml\" --json \"{dir.FullName}/s.json\"");
            Assert.True(code == 0, error);
            Assert.Equal("", output);
            Assert.Contains("hwloc 2.x XML: GPUs 16, switches 4", error, StringComparison.Ordinal);
            Assert.Contains("16 × NVIDIA H100 PCIe 80GB (10de:2331)", error, StringComparison.Ordinal);
            Assert.Contains("it loads as written", error, StringComparison.Ordinal);
            using var summary = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(dir.FullName, "s.json")));
            Assert.Equal(16, summary.RootElement.GetProperty("gpu_count").GetInt32());
            Assert.Contains("type: pcie_switch", await File.ReadAllTextAsync(Path.Combine(dir.FullName, "t.yaml")), StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Sweep_WritesCsvAndReport_OneRowPerPoint_AndVariesTheSharingModel()
    {
        var dir = Path.Combine(Path.GetTempPath(), "fabric-e2e-sweep-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var (code, output, error) = await SimAsync($"sweep -t topologies/loopback.yaml -w topologies/workloads/loopback-tiny.yaml --slots 4,8 --sharing max-min,fifo -o \"{dir}\" --json \"{dir}/points.json\"");
            Assert.True(code == 0, error);
            Assert.Contains("[4/4]", output, StringComparison.Ordinal);
            var rows = (await File.ReadAllLinesAsync(Path.Combine(dir, "sweep.csv"))).Skip(1).ToList();
            Assert.Equal(4, rows.Count);
            Assert.Equal(2, rows.Count(row => row.EndsWith(",fifo,", StringComparison.Ordinal)));
            Assert.Equal(2, rows.Count(row => row.EndsWith(",max-min,", StringComparison.Ordinal)));
            using var points = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(dir, "points.json")));
            Assert.Equal(4, points.RootElement.GetArrayLength());
            var html = await File.ReadAllTextAsync(Path.Combine(dir, "report.html"));
            Assert.Contains("first come, first served", html, StringComparison.Ordinal);
            Assert.Contains("lru / none / fifo", html, StringComparison.Ordinal);
            Assert.Contains("lru / none / max-min", html, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Validate_RecordsRealEngineOverShmAndTcp_CalibratesFromOtherEngineRuns_AndPrintsTheError()
    {
        var keep = Path.Combine(Path.GetTempPath(), "fabric-e2e-validate-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var (code, output, error) = await SimAsync($"validate --preset tiny --tokens 8 --repeat 2 --keep \"{keep}\"");
            Assert.True(code == 0, error);
            foreach (var scheme in new[] { "shm", "tcp" })
            {
                Assert.Contains($"{scheme} fetch path alone (probe): one ", output, StringComparison.Ordinal);
                Assert.Contains($"{scheme} fetch path in the engine", output, StringComparison.Ordinal);
                Assert.Contains($"{scheme} engine: ", output, StringComparison.Ordinal);
                using var stats = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(keep, $"stats-{scheme}.json")));
                Assert.True(stats.RootElement.GetProperty("fetches").GetInt64() > 0);
                Assert.True(stats.RootElement.GetProperty("mean_fetch_ms").GetDouble() > 0);
                Assert.Equal(stats.RootElement.GetProperty("fetches").GetInt64(), stats.RootElement.GetProperty("fetch_log").GetArrayLength());
                Assert.Contains("\"kind\":\"step\"", await File.ReadAllTextAsync(Path.Combine(keep, $"trace-{scheme}.jsonl")), StringComparison.Ordinal);
                // The link is calibrated from two other runs of the engine, whose tokens differ from the recorded run's.
                foreach (var when in new[] { "before", "after" })
                {
                    using var calibration = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(keep, $"calibration-{when}-{scheme}.json")));
                    Assert.True(calibration.RootElement.GetProperty("fetch_log").GetArrayLength() > 0);
                }
                // The second repetition recorded and calibrated afresh.
                Assert.True(File.Exists(Path.Combine(keep, $"trace-{scheme}-2.jsonl")));
                Assert.True(File.Exists(Path.Combine(keep, $"calibration-after-{scheme}-2.json")));
            }
            Assert.Contains("simulated", output, StringComparison.Ordinal);
            // The verdict is on the median (the table's "shm median" rows may wrap in a narrow console).
            Assert.Contains("the median of 2 runs' tokens/s", output, StringComparison.Ordinal);
            Assert.True(output.Split("median").Length - 1 >= 3, output);
        }
        finally
        {
            if (Directory.Exists(keep))
                Directory.Delete(keep, recursive: true);
        }
    }

    [Theory]
    [InlineData("--repeat 0", "fabric-sim: --repeat 0: give at least 1.")]
    [InlineData("--tokens 0", "fabric-sim: --tokens 0: give at least 1.")]
    [InlineData("--resident 2", "fabric-sim: --resident 2: give a fraction above 0 and at most 1.")]
    [InlineData("--hit-slowdown 0.5", "fabric-sim: --hit-slowdown 0.5: give 1 (none) or more.")]
    public async Task Validate_OptionOutOfRange_IsOneSentenceAndExit2_BeforeAnyEngineRuns(string option, string expected) =>
        ChildProgram.AssertRefused(await SimAsync($"validate {option}"), expected);

    [Theory]
    [InlineData("run --policy fifo", "fabric-sim: --policy 'fifo': there is no such policy; use one of lru, lfu, activation, belady.")]
    [InlineData("run --prefetch all", "fabric-sim: --prefetch 'all': there is no such prefetch mode; use one of none, next-layer, history.")]
    [InlineData("run --tokens 0", "fabric-sim: --tokens 0: give at least 1 token per engine.")]
    [InlineData("run --slots -1", "fabric-sim: --slots -1: an engine needs at least one expert slot.")]
    [InlineData("sweep --policy lru,fifo", "fabric-sim: --policy 'fifo': there is no such policy; use one of lru, lfu, activation, belady.")]
    [InlineData("sweep --tokens -2", "fabric-sim: --tokens -2: give at least 1 token per engine.")]
    [InlineData("run --sharing fair", "fabric-sim: --sharing 'fair': there is no such sharing model; use max-min or fifo.")]
    [InlineData("sweep --sharing fair", "fabric-sim: --sharing 'fair': there is no such sharing model; use max-min or fifo.")]
    [InlineData("run --threads 0", "fabric-sim: --threads 0: give at least 1 thread.")]
    [InlineData("run --sharing fifo --rate-quantum 1ms", "fabric-sim: A rate quantum (rate_quantum, --rate-quantum) applies to max-min sharing only, not to fifo.")]
    public async Task WorkloadOverride_OutOfRange_IsOneSentenceAndExit2(string command, string expected)
    {
        var (code, _, error) = await SimAsync($"{command} --topology topologies/loopback.yaml --workload topologies/workloads/loopback-tiny.yaml");
        Assert.Equal(2, code);
        Assert.Equal(expected, error.Trim());
    }

    [Fact]
    public async Task Run_MissingTopology_IsOneSentenceAndExit2()
    {
        var (code, _, error) = await SimAsync("run --topology nope.yaml --workload topologies/workloads/loopback-tiny.yaml");
        Assert.Equal(2, code);
        Assert.Equal("fabric-sim: The topology file 'nope.yaml' does not exist.", error.Trim());
    }
}
