namespace Fabric.Transport.Conformance;

/// <summary>A store filled with <see cref="RegionPattern"/> and the server exporting it; disposing stops both.</summary>
public sealed class ServedRegions : IAsyncDisposable
{
    public ServedRegions(RegionStore store, IFabricServer server)
    {
        Store = store;
        Server = server;
    }

    public RegionStore Store { get; }
    public IFabricServer Server { get; }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Server.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            Store.Dispose();
        }
    }
}
