using System.Text.Json;
using Fabric.Model;
using Fabric.Sim.Topology;

namespace Fabric.Sim.Workloads;

/// <summary>
/// A routing trace recorded by <c>fabric-engine generate --trace-out</c> (JSONL; format in COMMON.md): a header with
/// the model and run settings, then one line per (step, layer) with the experts of every position computed, and the
/// measured compute and stall time, and after each step's visits a step line with the time it spent outside them
/// (LM head, sampling). Step 0 is the prefill.
/// </summary>
public sealed class RoutingTrace
{
    /// <summary>One (step, layer) visit: rows of top-k experts, flattened.</summary>
    /// <summary>One (step, layer) visit: rows of top-k experts, flattened; the next-layer prediction made during it, when recorded.</summary>
    public sealed record Visit(int Step, int Layer, int Rows, int[] Experts, long ComputeNs, long StallNs, int[]? PredictedNext = null);

    private readonly Dictionary<int, long> _outsideNs;

    private RoutingTrace(ModelConfig model, IReadOnlyList<Visit> visits, Dictionary<int, long> outsideNs, JsonElement header)
    {
        Model = model;
        Visits = visits;
        _outsideNs = outsideNs;
        Policy = Str(header, "policy");
        Prefetch = Str(header, "prefetch");
        Transport = Str(header, "transport");
        Slots = header.TryGetProperty("slots", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt32() : 0;
        PromptTokens = header.TryGetProperty("prompt_tokens", out var p) && p.ValueKind == JsonValueKind.Number ? p.GetInt32() : 0;
        Steps = visits.Count == 0 ? 0 : visits.Max(v => v.Step) + 1;
    }

    public ModelConfig Model { get; }
    public IReadOnlyList<Visit> Visits { get; }
    public string? Policy { get; }
    public string? Prefetch { get; }
    public string? Transport { get; }
    public int Slots { get; }
    public int PromptTokens { get; }
    public int Steps { get; }

    /// <summary>Whether the recording engine wrote its next-layer predictions (every route line has predicted_next).</summary>
    public bool HasPredictions => Visits.All(v => v.PredictedNext is not null);

    /// <summary>Total recorded stall over the whole trace, ns.</summary>
    public long TotalStallNs => Visits.Sum(v => v.StallNs);

    /// <summary>Total recorded compute over the whole trace, ns.</summary>
    public long TotalComputeNs => Visits.Sum(v => v.ComputeNs);

    /// <summary>The recorded time step <paramref name="step"/> spent outside its layer visits, ns; 0 when the trace has no step line for it.</summary>
    public long OutsideNs(int step) => _outsideNs.GetValueOrDefault(step);

    public static RoutingTrace Load(string path)
    {
        if (!File.Exists(path))
            throw new TopologyException($"The routing trace '{path}' does not exist; record one with `./fabric engine generate --trace-out {path}`.");
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0)
            throw new TopologyException($"The routing trace '{path}' is empty.");
        JsonElement header;
        ModelConfig model;
        try
        {
            header = JsonDocument.Parse(lines[0]).RootElement;
            if (Str(header, "kind") != "header" || !header.TryGetProperty("model", out var m))
                throw new TopologyException($"The first line of '{path}' is not a trace header with a model.");
            model = m.Deserialize<ModelConfig>() ?? throw new TopologyException($"The header of '{path}' has an empty model.");
        }
        catch (JsonException e)
        {
            throw new TopologyException($"Line 1 of '{path}' is not JSON: {e.Message.Split('.')[0]}.");
        }
        var visits = new List<Visit>();
        var outside = new Dictionary<int, long>();
        for (var i = 1; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i]))
                continue;
            try
            {
                var e = JsonDocument.Parse(lines[i]).RootElement;
                if (Str(e, "kind") == "step")
                {
                    var step = e.GetProperty("step").GetInt32();
                    outside[step] = outside.GetValueOrDefault(step) + e.GetProperty("outside_ns").GetInt64();
                    continue;
                }
                if (Str(e, "kind") != "route")
                    continue;
                var rows = e.GetProperty("experts").EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToList();
                var flat = new int[rows.Count * model.NumExpertsPerTok];
                for (var r = 0; r < rows.Count; r++)
                {
                    if (rows[r].Length != model.NumExpertsPerTok)
                        throw new TopologyException($"Line {i + 1} of '{path}' routes a position to {rows[r].Length} experts; the model routes to {model.NumExpertsPerTok}.");
                    rows[r].CopyTo(flat, r * model.NumExpertsPerTok);
                }
                var predicted = e.TryGetProperty("predicted_next", out var pn) ? pn.EnumerateArray().Select(x => x.GetInt32()).ToArray() : null;
                if (predicted is not null && predicted.Any(x => x < 0 || x >= model.NumLocalExperts))
                    throw new TopologyException($"Line {i + 1} of '{path}' predicts an expert outside 0..{model.NumLocalExperts - 1}.");
                visits.Add(new Visit(e.GetProperty("step").GetInt32(), e.GetProperty("layer").GetInt32(), rows.Count, flat,
                    e.TryGetProperty("compute_ns", out var c) ? c.GetInt64() : -1,
                    e.TryGetProperty("stall_ns", out var s) ? s.GetInt64() : 0, predicted));
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new TopologyException($"Line {i + 1} of '{path}' is not a route record: {ex.Message.Split('.')[0]}.");
            }
        }
        if (visits.Count == 0)
            throw new TopologyException($"The routing trace '{path}' has a header but no route lines.");
        return new RoutingTrace(model, visits, outside, header);
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

/// <summary>Replays a <see cref="RoutingTrace"/> visit by visit; past its end it starts over.</summary>
public sealed class TraceRouting : IRoutingSource
{
    private readonly RoutingTrace _trace;
    private readonly bool _useComputeTime;
    private int _cursor;
    private int _lastVisit;

    public TraceRouting(RoutingTrace trace, bool useRecordedComputeTime, int startOffset = 0)
    {
        _trace = trace;
        _useComputeTime = useRecordedComputeTime;
        _cursor = startOffset % trace.Visits.Count;
        MaxRows = trace.Visits.Max(v => v.Rows);
    }

    public int MaxRows { get; }

    public int Next(int step, int layer, Span<int> experts)
    {
        // The visits are in run order; find the next one for this layer (a trace always cycles through the layers).
        for (var tries = 0; tries < _trace.Visits.Count; tries++)
        {
            var v = _trace.Visits[_cursor];
            _lastVisit = _cursor;
            _cursor = (_cursor + 1) % _trace.Visits.Count;
            if (v.Layer == layer)
            {
                v.Experts.CopyTo(experts);
                return v.Experts.Length;
            }
        }
        throw new TopologyException($"The routing trace has no visit of layer {layer}.");
    }

    public long RecordedComputeNs(int step, int layer) => _useComputeTime ? _trace.Visits[_lastVisit].ComputeNs : -1;

    public long RecordedOutsideNs(int step) => _useComputeTime ? _trace.OutsideNs(_trace.Visits[_lastVisit].Step) : 0;

    public int RecordedPrediction(Span<int> experts)
    {
        if (_trace.Visits[_lastVisit].PredictedNext is not { } p)
            return -1;
        p.CopyTo(experts);
        return p.Length;
    }
}
