using Fabric.Fuzz;

namespace Fabric.Pool.Tests;

/// <summary>
/// The short CI pass of the fuzz targets (tests/Fabric.Fuzz): every committed seed and every input that once crashed
/// a parser, then a fixed set of mutants of each seed, run in this process. A parser that throws anything but its
/// refusal fails the test.
/// </summary>
public sealed class FuzzCorpusTests
{
    private static readonly string FuzzDirectory = Path.Combine(FindRepository(), "tests", "Fabric.Fuzz");

    public static TheoryData<string> Targets() => new(FuzzTargets.All.Keys);

    [Fact]
    public void CommittedSeeds_AreTheOnesTheProgramWrites()
    {
        foreach (var (target, name, bytes) in SeedCorpus.Seeds())
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(FuzzDirectory, "corpus", target, name)));
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void SeedsAndPastCrashes_AreRefusedOrAccepted_NeverCrash(string target)
    {
        var inputs = Inputs(target, "corpus").Concat(Inputs(target, "crashes")).ToList();
        Assert.NotEmpty(inputs);
        foreach (var (file, bytes) in inputs)
        {
            var error = Record.Exception(() => FuzzTargets.All[target](bytes));
            Assert.True(error is null, $"{file}: {error}");
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void MutantsOfEachSeed_NeverCrash(string target)
    {
        var random = new Random(22);
        foreach (var (file, seed) in Inputs(target, "corpus"))
        {
            for (var i = 0; i < 3000; i++)
            {
                var mutant = Mutate(seed, random);
                var error = Record.Exception(() => FuzzTargets.All[target](mutant));
                Assert.True(error is null, $"mutant {i} of {file} ({Convert.ToHexString(mutant)}): {error}");
            }
        }
    }

    /// <summary>AFL's simplest moves: flip bits, set interesting bytes, cut, duplicate a slice.</summary>
    private static byte[] Mutate(byte[] seed, Random random)
    {
        var bytes = seed.ToList();
        for (var moves = random.Next(1, 5); moves > 0 && bytes.Count > 0; moves--)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(4))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    bytes[at] = (byte)(new[] { 0x00, 0x7F, 0x80, 0xC0, 0xFF, 0xDD, 0xDC, 0x91 }[random.Next(8)]);
                    break;
                case 2:
                    bytes.RemoveRange(at, random.Next(1, bytes.Count - at + 1));
                    break;
                default:
                    var length = random.Next(1, Math.Min(16, bytes.Count - at) + 1);
                    bytes.InsertRange(random.Next(bytes.Count), bytes.GetRange(at, length));
                    break;
            }
        }
        return [.. bytes];
    }

    private static IEnumerable<(string File, byte[] Bytes)> Inputs(string target, string folder)
    {
        var directory = Path.Combine(FuzzDirectory, folder, target);
        return Directory.Exists(directory)
            ? Directory.GetFiles(directory).Order(StringComparer.Ordinal).Select(f => (f, File.ReadAllBytes(f)))
            : [];
    }

    private static string FindRepository()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Fabric.sln")))
                return directory.FullName;
        }
        throw new InvalidOperationException($"No Fabric.sln above {AppContext.BaseDirectory}.");
    }
}
