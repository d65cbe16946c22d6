using System.Text.Json;
using Fabric.Model;

namespace Fabric.Engine.Runtime;

/// <summary>
/// Writes the routing trace (JSONL) that <c>fabric-sim</c> replays and Belady reads: a header line, then one line
/// per (step, layer) visit — <c>{"kind":"route","step":0,"layer":3,"positions":[5],"experts":[[1,6]],"weights":[[0.61,0.39]],"predicted_next":[1,4],"compute_ns":123456,"stall_ns":0}</c>.
/// <c>predicted_next</c> holds the distinct experts the engine's next-layer predictor chose for layer + 1 during this
/// visit (what next-layer prefetch fetched, or would have); it is empty at the last layer, where nothing is predicted.
/// A prefill longer than the engine's prefill chunk gives several lines for the same (step 0, layer), one per chunk.
/// After its layer lines each step has a line with the time the step spent outside them (embedding, final norm, LM head,
/// sampling, handing the token on): <c>{"kind":"step","step":0,"outside_ns":1234567}</c>.
/// </summary>
public sealed class RoutingTraceWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly Utf8JsonWriter _json;

    public RoutingTraceWriter(string path)
    {
        _stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
        _json = new Utf8JsonWriter(_stream, new JsonWriterOptions { SkipValidation = true });
    }

    /// <summary>The first line: the model and the run's settings.</summary>
    public void WriteHeader(ModelConfig model, int promptTokens, string policy, string prefetch, int slots, string transport)
    {
        _json.WriteStartObject();
        _json.WriteString("kind", "header");
        _json.WritePropertyName("model");
        JsonSerializer.Serialize(_json, model);
        _json.WriteNumber("prompt_tokens", promptTokens);
        _json.WriteString("policy", policy);
        _json.WriteString("prefetch", prefetch);
        _json.WriteNumber("slots", slots);
        _json.WriteString("transport", transport);
        _json.WriteEndObject();
        EndLine();
    }

    /// <summary>
    /// One (step, layer) visit: per position its routed experts and weights (<paramref name="topK"/> each, best first),
    /// and the experts the predictor chose for the next layer.
    /// </summary>
    public void WriteRoute(int step, int layer, ReadOnlySpan<int> positions, ReadOnlySpan<int> experts, ReadOnlySpan<float> weights, int topK, long computeNs, long stallNs,
        ReadOnlySpan<int> predictedNext)
    {
        _json.WriteStartObject();
        _json.WriteString("kind", "route");
        _json.WriteNumber("step", step);
        _json.WriteNumber("layer", layer);
        _json.WriteStartArray("positions");
        foreach (var p in positions)
            _json.WriteNumberValue(p);
        _json.WriteEndArray();
        _json.WriteStartArray("experts");
        for (var r = 0; r < positions.Length; r++)
        {
            _json.WriteStartArray();
            foreach (var e in experts.Slice(r * topK, topK))
                _json.WriteNumberValue(e);
            _json.WriteEndArray();
        }
        _json.WriteEndArray();
        _json.WriteStartArray("weights");
        for (var r = 0; r < positions.Length; r++)
        {
            _json.WriteStartArray();
            foreach (var w in weights.Slice(r * topK, topK))
                _json.WriteNumberValue(MathF.Round(w, 6));
            _json.WriteEndArray();
        }
        _json.WriteEndArray();
        _json.WriteStartArray("predicted_next");
        foreach (var e in predictedNext)
            _json.WriteNumberValue(e);
        _json.WriteEndArray();
        _json.WriteNumber("compute_ns", computeNs);
        _json.WriteNumber("stall_ns", stallNs);
        _json.WriteEndObject();
        EndLine();
    }

    /// <summary>The end of a step: <paramref name="outsideNs"/> of its wall time was spent outside its layer visits.</summary>
    public void WriteStep(int step, long outsideNs)
    {
        _json.WriteStartObject();
        _json.WriteString("kind", "step");
        _json.WriteNumber("step", step);
        _json.WriteNumber("outside_ns", Math.Max(0, outsideNs));
        _json.WriteEndObject();
        EndLine();
    }

    private void EndLine()
    {
        _json.Flush();
        _stream.WriteByte((byte)'\n');
        _json.Reset();
    }

    public void Dispose()
    {
        _json.Flush();
        _json.Dispose();
        _stream.Dispose();
    }
}
