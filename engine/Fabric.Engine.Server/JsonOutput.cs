using System.Text.Encodings.Web;
using System.Text.Json;

namespace Fabric.Engine.Server;

/// <summary>How responses are written: generated text verbatim (no HTML-safe escaping of quotes or non-ASCII), compact.</summary>
internal static class JsonOutput
{
    public static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
