using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Sources;
using Fabric.Transport;

namespace Fabric.Engine.Runtime;

/// <summary>What `fabric-engine generate` (and the benchmarks) ask for, before anything is opened.</summary>
public sealed record LaunchSettings
{
    /// <summary>A local checkpoint directory (all-resident by default), or null to use <see cref="PoolEndpoints"/>.</summary>
    public string? ModelDirectory { get; init; }

    /// <summary>Pool endpoints in failover order.</summary>
    public IReadOnlyList<FabricEndpoint> PoolEndpoints { get; init; } = [];

    public string? Token { get; init; }

    /// <summary>Find the pools in etcd instead: etcd://HOST:PORT/MODEL.</summary>
    public string? Discover { get; init; }

    /// <summary>The whole device budget in bytes; 0 = exactly enough for <see cref="EngineOptions.MaxSlots"/> slots, or for every expert.</summary>
    public long DeviceMemoryBytes { get; init; }

    /// <summary>The device name ("cpu", "ilgpu-cpu", "cuda:1"), resolved through <see cref="DeviceRegistry"/>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Path of a routing trace of this very run, for the belady policy.</summary>
    public string? BeladyTrace { get; init; }

    public EngineOptions Engine { get; init; } = new();
}

/// <summary>Opens the weight source and device and builds a <see cref="MoeEngine"/> from <see cref="LaunchSettings"/>.</summary>
public static class EngineLauncher
{
    public static async Task<MoeEngine> CreateAsync(LaunchSettings settings, CancellationToken cancellationToken = default)
    {
        var options = settings.Engine;
        if (options.Policy == "belady")
        {
            if (settings.BeladyTrace is null)
                throw new FabricException("The belady policy needs the future: a routing trace recorded from the same run.");
            options = options with { FutureAccesses = RoutingTraceReader.ReadAccessSequence(settings.BeladyTrace) };
        }
        IWeightSource source;
        if (settings.ModelDirectory is not null)
            source = new CheckpointSource(settings.ModelDirectory);
        else if (settings.Discover is not null)
            source = await PoolSource.DiscoverAsync(Fabric.Pool.Protocol.Discovery.EtcdAddress.ParseDiscover(settings.Discover), settings.Token,
                message => Console.Error.WriteLine($"fabric-engine: {message}"), cancellationToken).ConfigureAwait(false);
        else if (settings.PoolEndpoints.Count > 0)
            source = await PoolSource.ConnectAsync(settings.PoolEndpoints, settings.Token, cancellationToken: cancellationToken).ConfigureAwait(false);
        else
            throw new FabricException("Say where the weights are: a local checkpoint directory or one or more pool endpoints.");
        try
        {
            MemoryPlan.EnsureKvCacheFits(source.Config, options, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);
            var budget = settings.DeviceMemoryBytes > 0
                ? settings.DeviceMemoryBytes
                : MemoryPlan.BytesForSlots(source.Config, DenseWeights.DeviceBytes(source), source.ExpertLayout, options,
                    options.MaxSlots > 0 ? Math.Min(options.MaxSlots, source.Config.TotalExperts) : source.Config.TotalExperts);
            var device = DeviceRegistry.Create(settings.Device, budget);
            try
            {
                return await MoeEngine.CreateAsync(device, source, options, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                device.Dispose();
                throw;
            }
        }
        catch
        {
            await source.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
