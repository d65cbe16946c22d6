using System.Runtime.InteropServices;

namespace Fabric.Model.Tokenization;

/// <summary>
/// Turns a stream of generated token ids into text pieces for streaming, never splitting a UTF-8 character: a token
/// that ends inside a multi-byte character (byte-level BPE splits CJK and emoji across tokens) is held back until a
/// later token completes it. The pieces concatenate to the decode of the whole stream. One instance per stream; not
/// thread-safe.
/// <para>
/// Method (as in Hugging Face text-generation-inference and vLLM): decode a short window of recent tokens with and
/// without the new ones and emit the difference once the window's text no longer ends in U+FFFD, so that decoders
/// that look at neighbouring tokens (leading-space rules) see context.
/// </para>
/// </summary>
public sealed class IncrementalDecoder
{
    /// <summary>A UTF-8 character spans at most 4 bytes, so at most 4 tokens: a longer held-back tail is truly broken.</summary>
    private const int MaxHeldTokens = 4;

    private readonly TextTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = [];
    private int _prefixOffset;
    private int _readOffset;

    internal IncrementalDecoder(TextTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one token; returns the text it completes (often empty while a character is incomplete).</summary>
    public string Append(int tokenId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokenId);
        _ids.Add(tokenId);
        var ids = CollectionsMarshal.AsSpan(_ids);
        var prefix = _tokenizer.Decode(ids[_prefixOffset.._readOffset], _skipSpecialTokens);
        var text = _tokenizer.Decode(ids[_prefixOffset..], _skipSpecialTokens);
        var incomplete = text.EndsWith('\uFFFD') && _ids.Count - _readOffset <= MaxHeldTokens;
        if (text.Length <= prefix.Length || incomplete)
            return "";
        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        return text[prefix.Length..];
    }

    /// <summary>The text still held back (an incomplete character decodes to U+FFFD); the stream then starts afresh.</summary>
    public string Flush()
    {
        var ids = CollectionsMarshal.AsSpan(_ids);
        var prefix = _tokenizer.Decode(ids[_prefixOffset.._readOffset], _skipSpecialTokens);
        var text = _tokenizer.Decode(ids[_prefixOffset..], _skipSpecialTokens);
        _ids.Clear();
        _prefixOffset = 0;
        _readOffset = 0;
        return text.Length > prefix.Length ? text[prefix.Length..] : "";
    }
}
