using Microsoft.Extensions.Hosting;

namespace Fabric.Engine.Server;

/// <summary>A host lifetime that leaves SIGTERM and SIGINT to <see cref="EngineServer"/>, which drains before it stops.</summary>
internal sealed class QuietLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
