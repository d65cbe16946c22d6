using System.Reflection;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Fabric.Sim.Topology;

/// <summary>
/// The YamlDotNet settings every sim file uses (underscored names, unknown keys are errors), and the one sentence a
/// parse error becomes: YamlDotNet's own messages name .NET types, which a person editing a topology never sees.
/// </summary>
public static partial class Yaml
{
    public static readonly IDeserializer Deserializer = new DeserializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .Build();

    public static readonly ISerializer Serializer = new SerializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .ConfigureDefaultValuesHandling(DefaultValuesHandling.OmitNull | DefaultValuesHandling.OmitEmptyCollections)
        .Build();

    /// <summary>"<paramref name="origin"/> line N: what is wrong." for a parse error of a sim file.</summary>
    public static string Problem(YamlException e, string origin)
    {
        var message = (e.InnerException?.Message ?? e.Message).ReplaceLineEndings(" ").Trim();
        return $"{origin} line {e.Start.Line}: {Describe(message)}";
    }

    private static string Describe(string message)
    {
        if (UnknownKey().Match(message) is { Success: true } unknown)
        {
            var keys = KeysOf(unknown.Groups[2].Value);
            return keys is null ? $"unknown key '{unknown.Groups[1].Value}'." : $"unknown key '{unknown.Groups[1].Value}'; the keys here are {keys}.";
        }
        if (WrongShape().Match(message) is { Success: true } shape)
            return $"expected {Shape(shape.Groups[1].Value)} here, found {Shape(shape.Groups[2].Value)}.";
        if (Uncastable().Match(message) is { Success: true } cast)
            return $"expected {Expected(cast.Groups[1].Value)} here, found a single value.";
        if (Undeserializable().Match(message) is { Success: true } type)
            return $"expected {Expected(type.Groups[1].Value)} here.";
        if (Uncreatable().Match(message) is { Success: true } uncreatable)
            return $"expected {Expected(uncreatable.Groups[1].Value)} here, found keys and values.";
        if (NotANumber().Match(message) is { Success: true } number)
            return $"'{number.Groups[1].Value}' is not a number.";
        if (NotABoolean().Match(message) is { Success: true } boolean)
            return $"'{boolean.Groups[1].Value}' is not true or false.";
        var sentence = Position().Replace(message, "").Trim();
        return sentence.EndsWith('.') ? sentence : sentence + ".";
    }

    // What a YAML parser event starts, in the file's terms.
    private static string Shape(string yamlEvent) => yamlEvent switch
    {
        "SequenceStart" => "a list",
        "MappingStart" => "keys and values",
        _ => "a single value",
    };

    // A .NET type YamlDotNet names, as what the file should hold there.
    private static string Expected(string typeName)
    {
        if (typeName.StartsWith("System.Collections.Generic.List", StringComparison.Ordinal))
            return "a list";
        if (typeName.StartsWith("System.Collections.Generic.Dictionary", StringComparison.Ordinal))
            return "keys and values";
        if (typeName.StartsWith("System.", StringComparison.Ordinal))
        {
            if (typeName.Contains("System.Boolean", StringComparison.Ordinal))
                return "true or false";
            return typeName.Contains("System.Int", StringComparison.Ordinal) || typeName.Contains("System.Double", StringComparison.Ordinal)
                ? "a number" : "a single value";
        }
        var keys = KeysOf(typeName);
        return keys is null ? "another kind of value" : $"keys and values ({keys})";
    }

    // The keys a document class takes, as written in the file, or null for a type that is not one of them.
    private static string? KeysOf(string typeName)
    {
        var type = typeof(Yaml).Assembly.GetType(typeName.Split(',')[0].Trim());
        if (type is null)
            return null;
        var keys = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite)
            .Select(p => UnderscoredNamingConvention.Instance.Apply(p.Name));
        return string.Join(", ", keys);
    }

    [GeneratedRegex(@"^Property '(.+)' not found on type '(.+)'\.?$")]
    private static partial Regex UnknownKey();

    [GeneratedRegex(@"^Expected '(MappingStart|SequenceStart)', got '(\w+)'")]
    private static partial Regex WrongShape();

    [GeneratedRegex(@"^Invalid cast from '[^']+' to '([^']+)'")]
    private static partial Regex Uncastable();

    [GeneratedRegex(@"^No node deserializer was able to deserialize the node into type ([^,]+)")]
    private static partial Regex Undeserializable();

    [GeneratedRegex(@"^Failed to create an instance of type '([^']+)'")]
    private static partial Regex Uncreatable();

    [GeneratedRegex(@"^The input string '(.*)' was not in a correct format")]
    private static partial Regex NotANumber();

    [GeneratedRegex(@"^The value ""(.*)"" is not a valid YAML Boolean")]
    private static partial Regex NotABoolean();

    [GeneratedRegex(@"\s*\(at Line: \d+, Col: \d+, Idx: \d+\)")]
    private static partial Regex Position();
}
