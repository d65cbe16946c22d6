using System.Security.Cryptography;
using System.Text;
using Fabric.Common;

namespace Fabric.Pool.Server.Serving;

/// <summary>
/// The tenants allowed to use a pool, from a tokens file: one <c>name:secret</c> a line; blank lines and lines
/// starting with '#' are ignored. A client presents either the whole <c>name:secret</c> or just the secret.
/// </summary>
public sealed class TenantTable
{
    private readonly List<(string Name, byte[] Secret)> _tenants;

    public TenantTable(IEnumerable<(string Name, string Secret)> tenants) =>
        _tenants = tenants.Select(t => (t.Name, Encoding.UTF8.GetBytes(t.Secret))).ToList();

    /// <summary>The tenant names, in file order.</summary>
    public IEnumerable<string> Names => _tenants.Select(t => t.Name);

    /// <summary>Reads <paramref name="path"/>; a malformed line throws <see cref="FabricException"/> naming the file and line.</summary>
    public static TenantTable Load(string path)
    {
        if (!File.Exists(path))
            throw new FabricException($"The tokens file {path} does not exist.");
        var tenants = new List<(string, string)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var number = 0;
        foreach (var raw in File.ReadLines(path))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var colon = line.IndexOf(':');
            if (colon <= 0 || colon == line.Length - 1)
                throw new FabricException($"{path}, line {number}: expected name:secret.");
            var name = line[..colon].Trim();
            var secret = line[(colon + 1)..].Trim();
            if (name.Length == 0 || secret.Length == 0)
                throw new FabricException($"{path}, line {number}: expected name:secret.");
            if (!names.Add(name))
                throw new FabricException($"{path}, line {number}: tenant '{name}' is listed twice.");
            tenants.Add((name, secret));
        }
        if (tenants.Count == 0)
            throw new FabricException($"The tokens file {path} lists no tenant; add one name:secret line.");
        return new TenantTable(tenants);
    }

    /// <summary>The tenant <paramref name="token"/> belongs to, or null. Compares secrets in constant time.</summary>
    public string? Authenticate(string? token)
    {
        if (string.IsNullOrEmpty(token))
            return null;
        var colon = token.IndexOf(':');
        var claimedName = colon > 0 ? token[..colon] : null;
        var secret = Encoding.UTF8.GetBytes(colon > 0 ? token[(colon + 1)..] : token);
        string? match = null;
        foreach (var (name, expected) in _tenants)
        {
            if (CryptographicOperations.FixedTimeEquals(secret, expected) && (claimedName is null || claimedName == name))
                match ??= name;
        }
        return match;
    }
}
