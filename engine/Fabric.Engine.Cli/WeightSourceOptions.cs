using System.CommandLine;
using Fabric.Cli;
using Fabric.Common;
using Fabric.Transport;

namespace Fabric.Engine.Cli;

/// <summary>
/// The options <c>generate</c> and <c>serve</c> share: where the weights come from (pools or a local checkpoint), the
/// pool token, the compute device and its memory budget.
/// </summary>
internal sealed class WeightSourceOptions
{
    public Option<string[]> Pool { get; } = new("--pool") { Description = "Pool endpoint URI (tcp://HOST:PORT, shm:///dev/shm/NAME); give it more than once for failover.", AllowMultipleArgumentsPerToken = false };

    public Option<string?> Transport { get; } = TransportOption.Create("--pool");

    public Option<string?> Token { get; } = new("--token") { Description = "Tenant token for the pool (name:secret)." };

    public Option<string?> Model { get; } = new("--model") { Description = "A local checkpoint directory instead of a pool (all experts resident unless --device-memory says otherwise)." };

    public Option<string?> Memory { get; } = new("--device-memory") { Description = "The whole device budget (e.g. 512MiB, 2GB); default: enough for every expert." };

    public Option<string> Device { get; } = new("--device") { Description = "Compute device: cpu (default), or cuda[:N] where the GPU backend is built in.", DefaultValueFactory = _ => "cpu" };

    public IEnumerable<Option> All => [Pool, Transport, Token, Model, Memory, Device];

    /// <summary>The pool endpoints (after <c>--transport</c>) and the local checkpoint; refuses both at once.</summary>
    public (FabricEndpoint[] Endpoints, string? ModelDirectory) Where(ParseResult r)
    {
        var endpoints = TransportOption.Apply(r.GetValue(Transport), r.GetValue(Pool) ?? [], "fabric-engine");
        var modelDirectory = r.GetValue(Model);
        if (modelDirectory is not null && endpoints.Length > 0)
            throw new FabricException("Give either --model (local) or --pool, not both.");
        return (endpoints, modelDirectory);
    }

    /// <summary>The <c>--device-memory</c> budget in bytes; 0 when not given.</summary>
    public long Budget(ParseResult r)
    {
        var text = r.GetValue(Memory);
        try
        {
            return text is null ? 0 : ByteSize.Parse(text);
        }
        catch (FormatException e)
        {
            throw new FabricException($"--device-memory: {e.Message}");
        }
    }
}
