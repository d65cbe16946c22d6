namespace Fabric.EndToEnd.Tests;

/// <summary>fabric-bench as a child process: a bad option is one sentence and exit 2, before any work starts.</summary>
public sealed class BenchCliTests
{
    [Theory]
    [InlineData("sim --tokens -1", "fabric-bench: --tokens '-1' for bench sim: give a whole number of at least 1.")]
    [InlineData("sim --events", "fabric-bench: --events needs a value.")]
    [InlineData("sim --rate-quantum soon", "fabric-bench: --rate-quantum 'soon' for bench sim: give a duration such as 1ms.")]
    [InlineData("sim --rate-quantum 1ms", "fabric-bench: --rate-quantum for bench sim applies to max-min sharing only; add --sharing max-min.")]
    [InlineData("load --bogus 1", "fabric-bench: '--bogus' is not an option of bench load; see --help.")]
    [InlineData("load --repeat 0", "fabric-bench: --repeat '0' for bench load: give a whole number of at least 1.")]
    [InlineData("pool-clients --seconds 0", "fabric-bench: --seconds '0' for bench pool-clients: give a number above 0.")]
    [InlineData("demo --tokens many", "fabric-bench: --tokens 'many' for bench demo: give a whole number of at least 1.")]
    [InlineData("engine --skews x", "fabric-bench: --skews 'x' for bench engine: give numbers of 0 or more, separated by commas.")]
    [InlineData("engine --tokens 0", "fabric-bench: --tokens '0' for bench engine: give a whole number of at least 1.")]
    [InlineData("engine --policies lru,fifo", "fabric-bench: --policies 'lru,fifo' for bench engine: give some of lru, lfu, activation, belady, separated by commas.")]
    [InlineData("transport --transport rdma", "fabric-bench: --transport 'rdma' for bench transport: give one of shm, tcp.")]
    [InlineData("transport --sizes 4KiB,2GiB", "fabric-bench: --sizes '4KiB,2GiB' for bench transport: give sizes such as 4KiB, 1MiB or 512B, from 1B to 1GiB, separated by commas.")]
    [InlineData("transport --seconds 61", "fabric-bench: --seconds '61' for bench transport: give a number above 0 and at most 60.")]
    [InlineData("rdma --depth 2000", "fabric-bench: --depth '2000' for bench rdma: give a whole number from 1 to 1024.")]
    [InlineData("rdma --port 1", "fabric-bench: '--port' is not an option of bench rdma; see --help.")]
    [InlineData("pager --trace /nonexistent/t.jsonl", "fabric-bench: The routing trace '/nonexistent/t.jsonl' does not exist; record one with `./fabric engine generate --trace-out /nonexistent/t.jsonl`.")]
    [InlineData("pager --trace t.jsonl --slots 8,0", "fabric-bench: --slots '8,0' for bench pager: give whole numbers of at least 1, separated by commas.")]
    [InlineData("gpu --tests-timeout 1", "fabric-bench: --tests-timeout '1' for bench gpu: give a whole number of at least 10.")]
    public async Task BadOption_IsOneSentenceAndExit2(string arguments, string expected) =>
        ChildProgram.AssertRefused(await ChildProgram.RunAsync("fabric-bench", arguments), expected);

    [WithoutCudaFact]
    public async Task Gpu_WithoutACudaDevice_SaysSoInOneSentence()
    {
        var (code, _, stderr) = await ChildProgram.RunAsync("fabric-bench", "gpu --out /nonexistent/report.json");
        Assert.Equal(2, code);
        Assert.StartsWith("fabric-bench: There is no CUDA device to measure (", stderr.Trim(), StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Sim_RunsItsScaleRun_InAChildProcess()
    {
        // The bench runs with tiered compilation off; its 1,024-GPU run is fabric-sim's, in a child process of its own
        // that prints to the same console. One token of fifo keeps it short.
        var (code, stdout, stderr) = await ChildProgram.RunAsync("fabric-bench", "sim --events 1000 --tokens 1 --sharing fifo");
        Assert.True(code == 0, stderr);
        Assert.Contains("simulator events with fifo flows", stdout);
        Assert.Contains("scale: 1024 engines on rdma-1024", stdout);
        Assert.Contains("1,024 tokens in ", stdout);
        Assert.Contains("the bare queue alone", stdout);
    }
}

/// <summary>A test of what a machine without a CUDA device sees; skipped, saying so, where there is one.</summary>
public sealed class WithoutCudaFactAttribute : FactAttribute
{
    public WithoutCudaFactAttribute()
    {
        if (Fabric.Engine.Gpu.IlgpuAccelerators.CudaAbsenceReason() is null)
            Skip = "A CUDA device is present: bench gpu measures it rather than refusing.";
    }
}
