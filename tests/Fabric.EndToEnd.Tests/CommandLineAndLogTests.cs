using Fabric.Pool.Protocol;
using Fabric.Transport;

namespace Fabric.EndToEnd.Tests;

/// <summary>Every program's command-line errors are one sentence and exit 2; the pool logs to stderr at --log-level.</summary>
public sealed class CommandLineAndLogTests : IClassFixture<PoolModel>
{
    private readonly PoolModel _model;

    public CommandLineAndLogTests(PoolModel model) => _model = model;

    [Theory]
    [InlineData("fabric-pool", "serve --bogus")]
    [InlineData("fabric-engine", "generate --bogus")]
    [InlineData("fabric-sim", "run --bogus")]
    public async Task UnknownOption_IsOneSentence_AndExitTwo(string program, string arguments)
    {
        var run = await ChildProgram.RunAsync(program, arguments);
        ChildProgram.AssertRefused(run, $"{program}: Unrecognized command or argument '--bogus'; see {program} --help.");
    }

    [Fact]
    public async Task LogLevelThatIsNotOne_IsOneSentence_AndExitTwo()
    {
        var run = await ChildProgram.RunAsync("fabric-pool", $"serve --model {_model.ModelDirectory} --log-level loud");
        ChildProgram.AssertRefused(run, "fabric-pool: --log-level 'loud' is not a log level; give trace, debug, information, warning, error, critical or none; see fabric-pool --help.");
    }

    [Fact]
    public async Task Pool_LogsRefusedAuthentications_ClosedSessions_AndTheDrain_OneLineEach()
    {
        var pool = await PoolProcess.StartAsync($"serve --model {_model.ModelDirectory} --listen tcp://127.0.0.1:0 --tokens {_model.TokensFile} --log-level debug", endpoints: 1);
        await using (pool)
        {
            await using (var client = await FabricTransports.ConnectAsync(pool.Endpoint("tcp")))
            {
                for (var i = 0; i < 3; i++)
                    await Assert.ThrowsAsync<ControlException>(() => client.CallAsync<AuthenticateRequest, AuthenticateReply>(PoolMessageTypes.Authenticate, new AuthenticateRequest("alice:guess")));
            }
            await using (var good = await PoolConnection.ConnectAsync(FabricEndpoint.Parse(pool.Endpoint("tcp")), "bob:builder"))
            {
            }
            await Task.Delay(300);
            Assert.Equal(0, await pool.TerminateAsync(TimeSpan.FromSeconds(20)));
        }

        var lines = pool.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.Contains("warn: fabric-pool.tenants", StringComparison.Ordinal) && l.Contains("authentication refused (3 of 3)", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("closed: 3 failed authentications", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("authenticated as tenant bob", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("info: fabric-pool", StringComparison.Ordinal) && l.Contains("draining", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith("   at ", StringComparison.Ordinal));
    }
}
