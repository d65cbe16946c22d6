using System.Globalization;
using Fabric.Engine.Paging;
using Fabric.Model;
using Fabric.Sim.Network;
using Fabric.Sim.Topology;
using YamlDotNet.Core;

namespace Fabric.Sim.Workloads;

/// <summary>Reads a workload file against a topology (engine and pool names are checked there).</summary>
public static class WorkloadLoader
{
    public static Workload LoadFile(string path, Topology.Topology topology)
    {
        if (!File.Exists(path))
            throw new TopologyException($"The workload file '{path}' does not exist.");
        WorkloadDocument doc;
        try
        {
            doc = Yaml.Deserializer.Deserialize<WorkloadDocument>(File.ReadAllText(path)) ?? new WorkloadDocument();
        }
        catch (YamlException e)
        {
            throw new TopologyException(Yaml.Problem(e, Path.GetFileName(path)));
        }
        return Resolve(doc, topology, Path.GetDirectoryName(Path.GetFullPath(path))!, Path.GetFileName(path));
    }

    public static Workload Resolve(WorkloadDocument doc, Topology.Topology topology, string baseDirectory, string origin)
    {
        var routingDoc = doc.Routing ?? new RoutingDocument { Kind = "synthetic" };
        var kind = routingDoc.Kind ?? "synthetic";
        RoutingTrace? trace = null;
        if (kind == "trace")
        {
            if (routingDoc.Trace is null)
                throw new TopologyException($"{origin}: routing kind trace needs 'trace: PATH'.");
            trace = RoutingTrace.Load(Rooted(routingDoc.Trace, baseDirectory));
        }
        ModelConfig model;
        try
        {
            model = doc.Model is not null ? SimModels.Resolve(doc.Model, baseDirectory)
                : trace?.Model ?? throw new TopologyException($"{origin}: name a model (a preset such as mixtral-8x7b, or a config.json path).");
        }
        catch (CheckpointException e)
        {
            throw new TopologyException($"{origin}: {e.Message}");
        }

        var engines = new List<string>();
        if (doc.Engines is null || doc.Engines.Count == 0)
        {
            var gpus = topology.Nodes.Where(n => n.Kind == NodeKind.Gpu).ToList();
            engines.AddRange((gpus.Count > 0 ? gpus : topology.Nodes.Where(n => n.CanCompute)).Select(n => n.Name));
        }
        foreach (var e in doc.Engines ?? [])
        {
            for (var i = 0; i < (e.Count ?? 1); i++)
            {
                var name = TopologyLoader.Expand(e.Gpu, i);
                var node = topology.Find(name) ?? throw new TopologyException($"{origin} places an engine on '{name}', which topology '{topology.Name}' does not have.");
                if (!node.CanCompute)
                    throw new TopologyException($"{origin} places an engine on '{name}', a {node.Kind.ToString().ToLowerInvariant()} without peak_flops; engines run on gpus (or cpus with peak_flops).");
                engines.Add(name);
            }
        }
        if (engines.Count == 0)
            throw new TopologyException($"{origin}: topology '{topology.Name}' has no gpu; place engines with 'engines:'.");
        foreach (var p in doc.Pool ?? [])
        {
            var node = topology.Find(p) ?? throw new TopologyException($"{origin} puts the pool on '{p}', which topology '{topology.Name}' does not have.");
            if (!node.IsPool)
                throw new TopologyException($"{origin} puts the pool on '{p}', which is not a pool memory node (dram or cxl_type3).");
        }

        var totalExperts = model.TotalExperts;
        if (doc.ResidentFraction is { } fraction && !(fraction is > 0 and <= 1))
            throw new TopologyException(string.Create(CultureInfo.InvariantCulture, $"{origin}: resident_fraction is {fraction}; give a fraction above 0 and at most 1."));
        var slots = doc.Slots ?? (doc.ResidentFraction is { } f
            ? (int)Math.Round(f * totalExperts)
            : trace?.Slots is > 0 ? trace.Slots : totalExperts / 4);
        if (slots < 1)
            throw new TopologyException($"{origin}: an engine needs at least one expert slot (slots or resident_fraction).");
        slots = Math.Min(slots, totalExperts);
        var policy = doc.Policy ?? trace?.Policy ?? "lru";
        if (!EvictionPolicies.Names.Contains(policy))
            throw new TopologyException($"{origin}: there is no policy named '{policy}'; use one of {string.Join(", ", EvictionPolicies.Names)}.");
        var prefetch = doc.Prefetch ?? trace?.Prefetch ?? "none";
        if (!Prefetchers.Names.Contains(prefetch))
            throw new TopologyException($"{origin}: there is no prefetch mode named '{prefetch}'; use one of {string.Join(", ", Prefetchers.Names)}.");
        long overhead = 0;
        if (doc.LayerOverhead is not null && !Units.TryParseDuration(doc.LayerOverhead, out overhead))
            throw new TopologyException($"{origin}: layer_overhead '{doc.LayerOverhead}' is not a duration such as 20us.");

        long quantum = 0;
        if (doc.RateQuantum is not null && !Units.TryParseDuration(doc.RateQuantum, out quantum))
            throw new TopologyException($"{origin}: rate_quantum '{doc.RateQuantum}' is not a duration such as 10us.");
        var sharing = doc.Sharing is null ? Sharing.MaxMin
            : SharingNames.Parse(doc.Sharing) ?? throw new TopologyException($"{origin}: there is no sharing model named '{doc.Sharing}'; use {string.Join(" or ", SharingNames.All)}.");
        if (sharing == Sharing.Fifo && quantum > 0)
            throw new TopologyException($"{origin}: rate_quantum applies to max-min sharing only, not to fifo.");
        if (doc.DecodeTokens is < 1)
            throw new TopologyException($"{origin}: decode_tokens is {doc.DecodeTokens}; give at least 1.");
        if (doc.ContextTokens is < 0)
            throw new TopologyException($"{origin}: context_tokens is {doc.ContextTokens}; it cannot be negative.");
        if (doc.Batch is < 1)
            throw new TopologyException($"{origin}: batch is {doc.Batch}; give at least 1.");
        var batch = doc.Batch ?? 1;
        var seed = doc.Seed ?? 1;
        var layers = model.ExpertLayers;
        var experts = model.NumLocalExperts;
        var topK = model.NumExpertsPerTok;
        Func<int, IRoutingSource> routing;
        string description;
        switch (kind)
        {
            case "synthetic":
            {
                var zipf = routingDoc.Zipf ?? 0;
                if (!(zipf >= 0) || double.IsInfinity(zipf))
                    throw new TopologyException(string.Create(CultureInfo.InvariantCulture, $"{origin}: zipf is {zipf}; give 0 (flat) or more."));
                var reuse = Probability(routingDoc.TemporalReuse, "temporal_reuse", origin);
                var cross = Probability(routingDoc.CrossLayer, "cross_layer", origin);
                if (reuse + cross > 1)
                    throw new TopologyException($"{origin}: temporal_reuse + cross_layer must not exceed 1.");
                var popularity = new ExpertPopularity(layers, experts, seed, zipf);
                routing = i => new SyntheticRouting(popularity, topK, batch, seed * 1_000_003 + i, reuse, cross);
                description = string.Create(CultureInfo.InvariantCulture, $"synthetic (zipf {zipf}, temporal reuse {reuse}, cross-layer {cross})");
                break;
            }
            case "counts":
            {
                if (routingDoc.Counts is null)
                    throw new TopologyException($"{origin}: routing kind counts needs 'counts: PATH'.");
                var counts = ExpertCounts.Load(Rooted(routingDoc.Counts, baseDirectory));
                if (counts.Any(c => c.Length > experts))
                    throw new TopologyException($"{origin}: the counts file names more experts per layer than the model's {experts}.");
                var reuse = Probability(routingDoc.TemporalReuse, "temporal_reuse", origin);
                var cross = Probability(routingDoc.CrossLayer, "cross_layer", origin);
                var popularity = new ExpertPopularity(layers, experts, seed, weights: counts);
                routing = i => new SyntheticRouting(popularity, topK, batch, seed * 1_000_003 + i, reuse, cross);
                description = $"popularity counts from {Path.GetFileName(routingDoc.Counts)} ({counts.Length} layers)";
                break;
            }
            case "trace":
            {
                var t = trace!;
                if (t.Model.ExpertLayers != layers || t.Model.NumLocalExperts != experts || t.Model.NumExpertsPerTok != topK)
                    throw new TopologyException($"{origin}: the trace's model ({t.Model.ExpertLayers} layers x {t.Model.NumLocalExperts} experts, top-{t.Model.NumExpertsPerTok}) is not the workload's.");
                var useCompute = routingDoc.UseTraceCompute ?? true;
                routing = i => new TraceRouting(t, useCompute, i * layers);
                description = $"trace {Path.GetFileName(routingDoc.Trace)} ({t.Steps} steps, recorded over {t.Transport ?? "?"})";
                break;
            }
            default:
                throw new TopologyException($"{origin}: the routing kind '{kind}' is not one of synthetic, counts, trace.");
        }

        return new Workload
        {
            Name = doc.Name ?? origin,
            Model = model,
            Engines = engines,
            Pool = doc.Pool ?? [],
            Batch = batch,
            DecodeTokens = doc.DecodeTokens ?? trace?.Steps ?? 64,
            Slots = slots,
            Policy = policy,
            Prefetch = prefetch,
            PredictionAccuracy = doc.PredictionAccuracy is null ? null : Probability(doc.PredictionAccuracy, "prediction_accuracy", origin),
            RoutingRecordsPredictions = trace?.HasPredictions ?? false,
            ContextTokens = doc.ContextTokens ?? 512,
            LayerOverheadNs = overhead,
            RateQuantumNs = quantum,
            Sharing = sharing,
            Seed = seed,
            Routing = routing,
            FirstStepIsPrefill = trace is { PromptTokens: > 0 },
            RoutingIsTrace = trace is not null,
            RoutingDescription = description,
        };
    }

    private static double Probability(double? value, string name, string origin, double fallback = 0)
    {
        var v = value ?? fallback;
        if (v is < 0 or > 1 || double.IsNaN(v))
            throw new TopologyException($"{origin}: {name} is {v.ToString(CultureInfo.InvariantCulture)}; it must lie between 0 and 1.");
        return v;
    }

    private static string Rooted(string path, string baseDirectory) =>
        Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(baseDirectory, path));
}
