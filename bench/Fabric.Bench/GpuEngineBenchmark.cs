using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Fabric.Engine.Device;
using Fabric.Engine.Device.Cpu;
using Fabric.Engine.Gpu;
using Fabric.Engine.Runtime;
using Fabric.Engine.Sources;
using Fabric.Model;

namespace Fabric.Bench;

/// <summary>
/// `./fabric bench gpu-engine`: decode tokens/s of the engine on an ILGPU device (CUDA by default) with every expert
/// resident and with a quarter resident (paging from the local checkpoint through pinned staging and the copy
/// stream, with prefetch), beside the all-resident CPU device in the same run, as ratios.
/// </summary>
public sealed class GpuEngineBenchmark : IBenchmark
{
    public string Name => "gpu-engine";

    public string Summary => "decode tokens/s on a GPU all-resident and with 25% of experts resident, vs the CPU device";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var device = new Option<string>("--device") { Description = "cuda, cuda:N, or ilgpu-cpu (exercises the path on the host).", DefaultValueFactory = _ => "cuda" };
        var model = new Option<string?>("--model") { Description = "A checkpoint directory; default: the generated preset, made once under the temp directory." };
        var preset = new Option<string>("--preset") { Description = "Generated model when --model is not given: tiny, small or medium.", DefaultValueFactory = _ => "medium" };
        var skew = new Option<double>("--router-skew") { Description = "Router skew of the generated model (1 ≈ Mixtral's top-expert share).", DefaultValueFactory = _ => 1.0 };
        var policy = new Option<string>("--policy") { Description = "Eviction policy of the 25% run.", DefaultValueFactory = _ => "activation" };
        var prefetch = new Option<string>("--prefetch") { Description = "Prefetch of the 25% run.", DefaultValueFactory = _ => "next-layer" };
        var tokens = new Option<int>("--tokens") { Description = "Tokens generated per run (decode figures use all but the first).", DefaultValueFactory = _ => 64 };
        var fraction = new Option<double>("--resident") { Description = "Fraction of experts resident in the paged run.", DefaultValueFactory = _ => 0.25 };
        var skipCpu = new Option<bool>("--skip-cpu") { Description = "Leave out the CPU baseline (slow on big models)." };
        var json = new Option<string?>("--json") { Description = "Also write the results as JSON to this path." };
        var command = new RootCommand(Summary) { device, model, preset, skew, policy, prefetch, tokens, fraction, skipCpu, json };
        var parsed = command.Parse(args);
        if (parsed.Errors.Count > 0 || args.Contains("--help") || args.Contains("-h"))
            return await parsed.InvokeAsync(cancellationToken: cancellationToken);

        var spec = AcceleratorSpec.Parse(parsed.GetValue(device)!);
        if (spec.Kind == AcceleratorKind.Cuda && GpuDevices.CudaAbsenceReason() is { } absent)
            throw new GpuUnavailableException($"Cannot benchmark {spec}: {absent}.");
        var directory = parsed.GetValue(model) ?? EnsureModel(parsed.GetValue(preset)!, parsed.GetValue(skew));
        int count = Math.Max(2, parsed.GetValue(tokens));
        int[] prompt = Enumerable.Range(0, 16).Select(i => (i * 37 + 11) % 256).ToArray();

        var rows = new List<GpuEngineRow>();
        var paged = new EngineOptions { MaxSeqLen = 512, Policy = parsed.GetValue(policy)!, Prefetch = parsed.GetValue(prefetch)! };
        if (!parsed.GetValue(skipCpu))
            rows.Add(await RunAsync("cpu", directory, new EngineOptions { MaxSeqLen = 512 }, resident: 1.0, prompt, count, cancellationToken));
        rows.Add(await RunAsync(spec.ToString(), directory, new EngineOptions { MaxSeqLen = 512 }, resident: 1.0, prompt, count, cancellationToken));
        rows.Add(await RunAsync(spec.ToString(), directory, paged, parsed.GetValue(fraction), prompt, count, cancellationToken));

        double deviceAll = rows[^2].DecodeTokensPerSecond;
        double? cpu = parsed.GetValue(skipCpu) ? null : rows[0].DecodeTokensPerSecond;
        Console.WriteLine($"model {directory}; {count} tokens after a {prompt.Length}-token prompt, greedy");
        Console.WriteLine($"  {"device",-10} {"resident",14} {"policy",-22} {"decode tok/s",12} {"hit rate",9} {"vs all-resident",16} {"vs cpu",7}");
        foreach (var row in rows)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {row.Device,-10} {row.Slots + "/" + row.Experts,14} {row.Policy,-22} {row.DecodeTokensPerSecond,12:0.0} {row.HitRate,9:P1} " +
                $"{(row.Device == "cpu" ? "" : (row.DecodeTokensPerSecond / deviceAll).ToString("0.00", CultureInfo.InvariantCulture)),16} " +
                $"{(cpu is { } c ? (row.DecodeTokensPerSecond / c).ToString("0.00", CultureInfo.InvariantCulture) : ""),7}"));
        if (rows.Skip(1).Any(r => !r.Tokens.SequenceEqual(rows[0].Tokens)))
            Console.WriteLine("note: the greedy tokens differ between runs (FP32 sums in a different order can flip a near-tie).");
        if (parsed.GetValue(json) is { } path)
        {
            await File.WriteAllTextAsync(path, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
            Console.WriteLine($"wrote {path}");
        }
        return 0;
    }

    private static async Task<GpuEngineRow> RunAsync(string device, string directory, EngineOptions options, double resident, int[] prompt, int count,
        CancellationToken cancellationToken)
    {
        var source = new CheckpointSource(directory);
        var config = source.Config;
        int slots = Math.Max(config.NumExpertsPerTok, (int)Math.Round(config.TotalExperts * resident));
        options = options with { MaxSlots = slots };
        long engineBytes = MemoryPlan.BytesForSlots(config, DenseWeights.DeviceBytes(source), source.ExpertLayout, options, slots);
        IComputeDevice computeDevice = device == "cpu" ? new CpuDevice(engineBytes) : IlgpuDevice.Open(device, IlgpuDevice.BudgetLeaving(engineBytes));
        await using var engine = await MoeEngine.CreateAsync(computeDevice, source, options, cancellationToken);
        var result = await Generator.GenerateAsync(engine, prompt, count, new Sampler(), cancellationToken: cancellationToken);
        var stats = engine.Pager.Stats;
        double uses = stats.Hits + stats.Misses;
        return new GpuEngineRow(device, engine.Plan.Slots, config.TotalExperts, $"{options.Policy}/{options.Prefetch}", result.DecodeTokensPerSecond,
            uses > 0 ? stats.Hits / uses : 1, result.Tokens);
    }

    private static string EnsureModel(string preset, double skew)
    {
        var directory = Path.Combine(Path.GetTempPath(), "fabric-bench-models", string.Create(CultureInfo.InvariantCulture, $"{preset}-bf16-skew{skew}"));
        if (!File.Exists(Path.Combine(directory, "config.json")))
        {
            Console.WriteLine($"generating the {preset} model into {directory}...");
            ModelGenerator.Write(directory, ModelPresets.Get(preset), seed: 1, routerSkew: skew);
        }
        return directory;
    }

    private sealed record GpuEngineRow(string Device, int Slots, int Experts, string Policy, double DecodeTokensPerSecond, double HitRate, int[] Tokens);
}
