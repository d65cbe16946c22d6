namespace Fabric.Model.Tokenization;

/// <summary>
/// The byte-to-character table of byte-level BPE (GPT-2, and Hugging Face's ByteLevel pre-tokenizer and decoder):
/// printable Latin-1 bytes stand for themselves, every other byte for the character U+0100 + n, where n counts those
/// bytes in order. A vocabulary of byte-level tokens is written in these characters (a space is "Ġ").
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] CharOfByte = Build();

    /// <summary>The character that stands for <paramref name="value"/> in byte-level token text.</summary>
    public static char Of(byte value) => CharOfByte[value];

    /// <summary>The byte-level text of <paramref name="bytes"/>.</summary>
    public static string Of(ReadOnlySpan<byte> bytes)
    {
        var text = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
            text[i] = CharOfByte[bytes[i]];
        return new string(text);
    }

    private static char[] Build()
    {
        var table = new char[256];
        var next = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)(256 + next++);
        }
        return table;
    }
}
