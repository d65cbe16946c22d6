using Fabric.Model;

namespace Fabric.Pool.Tests;

/// <summary>Runs each layer's router over RMS-normalised embedding rows (the hidden states the anchor design relies on) and counts top-2 selections.</summary>
public sealed class RouterSkewTests
{
    private static readonly ModelConfig Config = ModelPresets.Tiny with { VocabSize = 4096 };

    [Fact]
    public void Skew1_TopExpertTakesAboutMixtralShare()
    {
        var (top, ranked) = TopShare(routerSkew: 1.0);
        Assert.InRange(top, 0.14, 0.22);
        Assert.True(ranked, "the most selected expert should be the one the generator ranked first");
    }

    [Fact]
    public void Skew0_RoutingIsNearlyFlat()
    {
        var (top, _) = TopShare(routerSkew: 0);
        Assert.InRange(top, 0.125, 0.145);
    }

    [Fact]
    public void LargerSkew_ConcentratesMore()
    {
        Assert.True(TopShare(2.0).Share > TopShare(1.0).Share + 0.03);
    }

    private static (double Share, bool TopIsRankOne) TopShare(double routerSkew)
    {
        using var dir = new TempDirectory();
        ModelGenerator.Write(dir.Path, Config, seed: 5, routerSkew);
        var checkpoint = Checkpoint.Open(dir.Path);
        var h = Config.HiddenSize;
        var experts = Config.NumLocalExperts;
        var embed = GeneratorTests.ReadFloats(checkpoint.FindDense("model.embed_tokens.weight")!);
        double shareSum = 0;
        var allRanked = true;
        for (var layer = 0; layer < Config.NumHiddenLayers; layer++)
        {
            var router = GeneratorTests.ReadFloats(checkpoint.Router(layer));
            var counts = new int[experts];
            var logits = new double[experts];
            for (var token = 0; token < Config.VocabSize; token++)
            {
                var row = embed.AsSpan(token * h, h);
                var rms = Math.Sqrt(row.ToArray().Select(v => (double)v * v).Average() + Config.RmsNormEps);
                for (var e = 0; e < experts; e++)
                {
                    double dot = 0;
                    for (var j = 0; j < h; j++)
                        dot += router[(e * h) + j] * row[j] / rms;
                    logits[e] = dot;
                }
                var order = Enumerable.Range(0, experts).OrderByDescending(e => logits[e]).Take(Config.NumExpertsPerTok);
                foreach (var e in order)
                    counts[e]++;
            }
            var total = (double)Config.VocabSize * Config.NumExpertsPerTok;
            var best = Array.IndexOf(counts, counts.Max());
            shareSum += counts[best] / total;
            var ranks = ModelGenerator.PopularityRanks(experts, 5, layer);
            allRanked &= routerSkew == 0 || ranks[best] == 1;
        }
        return (shareSum / Config.NumHiddenLayers, allRanked);
    }
}
