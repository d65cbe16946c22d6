using System.Text;

namespace Fabric.Engine.Server;

/// <summary>
/// Finds OpenAI <c>stop</c> strings in streamed text: text that could still be the start of a stop string is held
/// back until it cannot, and a found stop string ends the text just before it (it is not returned). One per stream.
/// </summary>
public sealed class StopStrings
{
    private readonly IReadOnlyList<string> _stops;
    private readonly int _hold;
    private readonly StringBuilder _pending = new();

    public StopStrings(IReadOnlyList<string> stops)
    {
        _stops = stops;
        _hold = stops.Count == 0 ? 0 : stops.Max(s => s.Length) - 1;
    }

    /// <summary>True once a stop string was found.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds <paramref name="piece"/>; returns the text that is now safe to send.</summary>
    public string Append(string piece)
    {
        if (Stopped)
            return "";
        if (_stops.Count == 0)
            return piece;
        _pending.Append(piece);
        var text = _pending.ToString();
        var cut = -1;
        foreach (var stop in _stops)
        {
            var at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut))
                cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            _pending.Clear();
            return text[..cut];
        }
        var safe = Math.Max(0, text.Length - _hold);
        // Never end the safe part between the halves of a surrogate pair.
        if (safe > 0 && safe < text.Length && char.IsHighSurrogate(text[safe - 1]))
            safe--;
        _pending.Remove(0, safe);
        return text[..safe];
    }

    /// <summary>The held-back tail at the end of the stream (no stop string can complete any more).</summary>
    public string Flush()
    {
        if (Stopped)
            return "";
        var rest = _pending.ToString();
        _pending.Clear();
        return rest;
    }
}
