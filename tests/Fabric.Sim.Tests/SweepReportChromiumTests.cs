using System.Diagnostics;
using Fabric.Model;
using Fabric.Sim.Reports;
using Fabric.Sim.Run;
using Fabric.Sim.Topology;
using Fabric.Sim.Workloads;

namespace Fabric.Sim.Tests;

/// <summary>The sweep's HTML report as a browser shows it: headless Chromium loads it, logs no console message, and its charts are there.</summary>
public sealed class SweepReportChromiumTests
{
    private static (int Code, string Dom, string[] Console) Render(string html)
    {
        var path = Path.Combine(Path.GetTempPath(), $"fabric-report-{Environment.ProcessId}-{Guid.NewGuid():N}.html");
        var profile = Directory.CreateTempSubdirectory("fabric-chromium-");
        File.WriteAllText(path, html);
        try
        {
            var start = new ProcessStartInfo("chromium",
                ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", $"--user-data-dir={profile.FullName}", "--dump-dom", new Uri(path).AbsoluteUri])
            { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(start)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(90_000))
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail("headless chromium did not finish in 90 s");
            }
            // Chromium logs each console message of the page as a CONSOLE line on stderr (INFO level for every kind).
            var console = stderr.Result.Split('\n').Where(l => l.Contains(":CONSOLE", StringComparison.Ordinal)).ToArray();
            return (p.ExitCode, stdout.Result, console);
        }
        finally
        {
            File.Delete(path);
            profile.Delete(recursive: true);
        }
    }

    [ChromiumFact]
    public void Report_LoadsWithoutConsoleMessages_AndShowsEveryChart()
    {
        var t = TopologyLoader.LoadFile(Path.Combine(RepoFiles.Root, "topologies", "loopback.yaml"));
        var points = new List<SweepPoint>();
        foreach (var slots in new[] { 4, 16 })
        {
            foreach (var policy in new[] { "lru", "lfu" })
            {
                var w = new Workload
                {
                    Name = "tiny", Model = ModelPresets.Tiny, Engines = ["host"], Slots = slots, Policy = policy, DecodeTokens = 6,
                    Routing = i => new SyntheticRouting(4, 8, 2, 1, 3, zipf: 1),
                };
                points.Add(new SweepPoint(t.Name, policy, "none", slots, slots / 32.0, SimRunner.Run(t, w)));
            }
        }
        var (code, dom, console) = Render(SweepReport.Html(points, "chromium check"));
        Assert.Equal(0, code);
        Assert.Empty(console);
        var charts = dom.Split("<svg").Skip(1).ToArray();
        Assert.Equal(4, charts.Length);
        Assert.All(charts, c => Assert.Contains("<path", c, StringComparison.Ordinal));
        Assert.Contains("lru / none", dom, StringComparison.Ordinal);
        Assert.Contains("<table", dom, StringComparison.Ordinal);
    }
}

/// <summary>A fact that needs headless Chromium (Debian package chromium, which `./fabric test` installs when run as root).</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "chromium")));
        if (!onPath)
            Skip = "chromium is not installed (Debian package chromium; `./fabric test` installs it when run as root)";
    }
}
