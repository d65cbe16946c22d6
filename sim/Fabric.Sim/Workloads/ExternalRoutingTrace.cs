using System.Globalization;
using System.Text.Json;
using Fabric.Model;
using Fabric.Sim.Topology;

namespace Fabric.Sim.Workloads;

/// <summary>
/// Routing traces in the plain forms research repositories publish, turned into the engine's JSONL trace so that
/// <c>sim run</c> and <c>bench pager</c> replay real models' routing without running them:
/// <list type="bullet">
/// <item>plain text: one line per token and layer, token-major (token 0 layer 0, token 0 layer 1, ...), listing the
/// chosen expert ids separated by spaces or commas; the layer count comes from the caller;</item>
/// <item>CSV with the header <c>token,layer,experts</c>, the experts of a row separated by spaces, semicolons or
/// <c>|</c> (optionally in brackets or quotes).</item>
/// </list>
/// The result has no predictions and no timings: next-layer prefetch replays it only with a stated predictor accuracy,
/// and the roofline decides compute time. Every token is a decode step (no prefill).
/// </summary>
public static class ExternalRoutingTrace
{
    /// <summary>Converts <paramref name="path"/> for <paramref name="model"/>; returns the tokens and route lines written.</summary>
    public static (int Tokens, int Lines) Convert(string path, ModelConfig model, TextWriter output)
    {
        if (!File.Exists(path))
            throw new TopologyException($"The routing file '{path}' does not exist.");
        var routes = Read(path, model);
        var tokens = routes.Count == 0 ? 0 : routes.Max(r => r.Token) + 1;
        var header = new Dictionary<string, object?>
        {
            ["kind"] = "header",
            ["model"] = model,
            ["prompt_tokens"] = 0,
            ["policy"] = "",
            ["prefetch"] = "",
            ["slots"] = 0,
            ["transport"] = $"imported from {Path.GetFileName(path)}",
        };
        output.WriteLine(JsonSerializer.Serialize(header));
        foreach (var (token, layer, experts) in routes.OrderBy(r => r.Token).ThenBy(r => r.Layer))
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{{\"kind\":\"route\",\"step\":{token},\"layer\":{layer},\"positions\":[{token}],\"experts\":[[{string.Join(',', experts)}]]}}"));
        return (tokens, routes.Count);
    }

    private static List<(int Token, int Layer, int[] Experts)> Read(string path, ModelConfig model)
    {
        var lines = File.ReadAllLines(path);
        var first = Array.FindIndex(lines, l => !string.IsNullOrWhiteSpace(l));
        if (first < 0)
            throw new TopologyException($"The routing file '{path}' is empty.");
        var csv = lines[first].Replace(" ", "", StringComparison.Ordinal).StartsWith("token,layer,experts", StringComparison.OrdinalIgnoreCase);
        var routes = new List<(int, int, int[])>();
        var seen = new HashSet<(int, int)>();
        var row = 0;
        for (var i = csv ? first + 1 : first; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i]))
                continue;
            int token, layer;
            string expertText;
            if (csv)
            {
                var parts = lines[i].Split(',', 3);
                if (parts.Length != 3 || !int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out token)
                    || !int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out layer))
                    throw new TopologyException($"Line {i + 1} of '{path}' is not 'token,layer,experts' with whole numbers.");
                expertText = parts[2];
            }
            else
            {
                (token, layer) = (row / model.NumHiddenLayers, row % model.NumHiddenLayers);
                expertText = lines[i];
            }
            row++;
            var experts = Experts(expertText, path, i + 1, model);
            if (layer >= model.NumHiddenLayers)
                throw new TopologyException($"Line {i + 1} of '{path}' names layer {layer}; the model has {model.NumHiddenLayers} layers.");
            if (!seen.Add((token, layer)))
                throw new TopologyException($"Line {i + 1} of '{path}' routes token {token} at layer {layer} a second time.");
            routes.Add((token, layer, experts));
        }
        if (routes.Count == 0)
            throw new TopologyException($"The routing file '{path}' has no routes.");
        if (routes.Count % model.NumHiddenLayers != 0 || routes.GroupBy(r => r.Item1).Any(g => g.Count() != model.NumHiddenLayers))
            throw new TopologyException($"'{path}' does not give every token all {model.NumHiddenLayers} layers ({routes.Count} lines); is the layer count right?");
        return routes;
    }

    private static int[] Experts(string text, string path, int line, ModelConfig model)
    {
        var tokens = text.Trim().Trim('"', '[', ']', '(', ')').Split([' ', ',', ';', '|', '\t'], StringSplitOptions.RemoveEmptyEntries);
        var experts = new int[tokens.Length];
        for (var k = 0; k < tokens.Length; k++)
        {
            if (!int.TryParse(tokens[k].Trim('[', ']', '"'), NumberStyles.None, CultureInfo.InvariantCulture, out experts[k]) || experts[k] >= model.NumLocalExperts)
                throw new TopologyException($"Line {line} of '{path}' has '{tokens[k]}', which is not an expert id from 0 to {model.NumLocalExperts - 1}.");
        }
        if (experts.Length != model.NumExpertsPerTok)
            throw new TopologyException($"Line {line} of '{path}' lists {experts.Length} experts; the model routes each token to {model.NumExpertsPerTok}.");
        return experts;
    }
}
