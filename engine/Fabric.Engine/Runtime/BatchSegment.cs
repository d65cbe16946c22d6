namespace Fabric.Engine.Runtime;

/// <summary>
/// One sequence's rows in a batched step (<see cref="MoeEngine.StepAsync"/>): <see cref="Tokens"/> consecutive token
/// rows of KV lane <see cref="Sequence"/> at positions <see cref="StartPosition"/>.. (a prefill chunk, or one decode
/// token). <see cref="WantsLogits"/>: compute the LM head on the segment's last row.
/// </summary>
public readonly record struct BatchSegment(int Sequence, int StartPosition, int Tokens, bool WantsLogits);
