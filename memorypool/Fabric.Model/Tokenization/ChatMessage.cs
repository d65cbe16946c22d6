namespace Fabric.Model.Tokenization;

/// <summary>One message of a chat: <paramref name="Role"/> is "system", "user" or "assistant".</summary>
public sealed record ChatMessage(string Role, string Content);
