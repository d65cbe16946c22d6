using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Fabric.Common;
using Fabric.Engine.Gpu;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench gpu`: the one script for a machine with a GPU. It runs the GPU test project (its CUDA rows run
/// there), then the GPU benchmarks one after another, and writes every figure, with each step's time and any failure,
/// to one JSON file, so that a short loan of a GPU machine is spent measuring. A step that fails is recorded and the
/// next one still runs. It installs nothing: the build is the launcher's, the packages are NuGet's.
/// </summary>
public sealed class GpuSuiteBenchmark(IReadOnlyList<IBenchmark> benchmarks) : IBenchmark
{
    public string Name => "gpu";

    public string Summary => "the GPU machine's script: CUDA tests, gpu-copy, gpu-engine (prefetch on and off), all figures into one JSON file";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = new BenchOptions(Name, args, ["--device", "--out", "--preset", "--tests-timeout"], ["--skip-tests"]);
        if (options.Has("--help"))
        {
            Console.WriteLine("usage: fabric bench gpu [--device cuda[:N]|ilgpu-cpu] [--out FILE] [--preset tiny|small|medium] [--skip-tests] [--tests-timeout SECONDS]");
            Console.WriteLine("  --device         the accelerator to measure (default cuda; ilgpu-cpu exercises the script on any machine)");
            Console.WriteLine("  --out            the JSON report (default artifacts/gpu-report.json)");
            Console.WriteLine("  --preset         the generated model of the engine runs (default medium)");
            Console.WriteLine("  --skip-tests     leave out the GPU test project");
            Console.WriteLine("  --tests-timeout  seconds the test project may take (default 300)");
            return ExitCodes.Success;
        }
        var device = options.Text("--device") ?? "cuda";
        var output = Path.GetFullPath(options.Text("--out") ?? Path.Combine("artifacts", "gpu-report.json"));
        var preset = options.Text("--preset") ?? "medium";
        var testsTimeout = TimeSpan.FromSeconds(options.Int("--tests-timeout", 300, min: 10));
        var spec = AcceleratorSpec.Parse(device);
        if (spec.Kind == AcceleratorKind.Cuda && IlgpuAccelerators.CudaAbsenceReason() is { } absent)
            throw new GpuUnavailableException($"There is no CUDA device to measure ({absent}); use --device ilgpu-cpu to exercise the script without one.");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);

        var report = new JsonObject
        {
            ["device"] = device,
            ["accelerators"] = new JsonArray([.. IlgpuAccelerators.List().Select(a => (JsonNode)JsonValue.Create($"{a.Spec}: {a.Name}")!)]),
            ["started"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        };
        var steps = new JsonObject();
        report["steps"] = steps;
        var failures = 0;
        if (!options.Has("--skip-tests"))
            failures += await StepAsync(steps, "tests", () => RunGpuTestsAsync(testsTimeout, cancellationToken)) ? 0 : 1;
        foreach (var (name, bench, benchArgs) in Steps(device, preset))
        {
            var json = Path.Combine(Path.GetTempPath(), $"fabric-gpu-{name}-{Environment.ProcessId}.json");
            failures += await StepAsync(steps, name, async () =>
            {
                Console.WriteLine($"== {name}: ./fabric bench {bench} {string.Join(' ', benchArgs)}");
                var code = await benchmarks.Single(b => b.Name == bench).RunAsync([.. benchArgs, "--json", json], cancellationToken).ConfigureAwait(false);
                if (code != 0)
                    throw new FabricException($"bench {bench} exited with {code}.");
                var node = JsonNode.Parse(await File.ReadAllTextAsync(json, cancellationToken).ConfigureAwait(false));
                File.Delete(json);
                return node;
            }) ? 0 : 1;
        }
        report["finished"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        await File.WriteAllTextAsync(output, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        Console.WriteLine($"wrote {output} ({failures} step(s) failed)");
        return failures == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }

    /// <summary>The benchmark steps after the tests: the copy path, then the engine with prefetch on and off (the overlap target).</summary>
    private static IEnumerable<(string Name, string Bench, string[] Args)> Steps(string device, string preset)
    {
        yield return ("gpu-copy", "gpu-copy", ["--device", device]);
        yield return ("gpu-engine", "gpu-engine", ["--device", device, "--preset", preset, "--skip-cpu"]);
        yield return ("gpu-engine-no-prefetch", "gpu-engine", ["--device", device, "--preset", preset, "--skip-cpu", "--prefetch", "none"]);
    }

    private static async Task<bool> StepAsync(JsonObject steps, string name, Func<Task<JsonNode?>> step)
    {
        var clock = Stopwatch.StartNew();
        var entry = new JsonObject();
        steps[name] = entry;
        try
        {
            entry["result"] = await step().ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            entry["error"] = e.Message;
            Console.Error.WriteLine($"fabric-bench gpu: step {name} failed: {e.Message}");
            return false;
        }
        finally
        {
            entry["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        }
    }

    /// <summary>Runs the GPU test project (already built by the launcher) and reads its counts and failures from the trx log.</summary>
    private static async Task<JsonNode?> RunGpuTestsAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var project = Path.Combine("tests", "Fabric.Engine.Gpu.Tests");
        if (!Directory.Exists(project))
            throw new FabricException($"The GPU tests are run from the repository root; {project} is not here.");
        var results = Path.Combine(Path.GetTempPath(), $"fabric-gpu-tests-{Environment.ProcessId}");
        Console.WriteLine($"== tests: dotnet test {project}");
        var start = new ProcessStartInfo("dotnet", ["test", project, "-c", "Release", "--no-build", "-nologo", "--logger", "trx;LogFileName=gpu.trx", "--results-directory", results])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start) ?? throw new FabricException("dotnet test did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            throw new FabricException($"The GPU tests ran past {timeout.TotalSeconds:0} s and were stopped.");
        }
        Console.Write(await stdout.ConfigureAwait(false));
        var trx = Path.Combine(results, "gpu.trx");
        if (!File.Exists(trx))
            throw new FabricException($"dotnet test wrote no results (exit {process.ExitCode}): {(await stderr.ConfigureAwait(false)).Trim()}");
        XNamespace ns = "http://microsoft.com/schemas/VisualStudio/TeamTest/2010";
        var document = XDocument.Load(trx);
        var counters = document.Descendants(ns + "Counters").Single();
        var failed = document.Descendants(ns + "UnitTestResult")
            .Where(r => (string?)r.Attribute("outcome") == "Failed")
            .Select(r => (JsonNode)new JsonObject
            {
                ["test"] = (string?)r.Attribute("testName"),
                ["message"] = r.Descendants(ns + "Message").FirstOrDefault()?.Value,
            });
        Directory.Delete(results, recursive: true);
        return new JsonObject
        {
            ["exitCode"] = process.ExitCode,
            ["total"] = (int?)counters.Attribute("total"),
            ["passed"] = (int?)counters.Attribute("passed"),
            ["failed"] = (int?)counters.Attribute("failed"),
            ["skipped"] = ((int?)counters.Attribute("total") ?? 0) - ((int?)counters.Attribute("passed") ?? 0) - ((int?)counters.Attribute("failed") ?? 0),
            ["failures"] = new JsonArray([.. failed]),
        };
    }
}
