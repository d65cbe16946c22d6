using System.Threading.Channels;
using Fabric.Engine.Runtime;

namespace Fabric.Engine.Serving;

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>A stop token was chosen (it is not emitted).</summary>
    Stop,

    /// <summary>max_tokens reached, or the sequence filled its KV lane.</summary>
    Length,

    /// <summary>The caller cancelled (client gone, stop string matched, drain deadline).</summary>
    Cancelled,

    /// <summary>The engine failed the step (a fetch no pool could serve); <see cref="GenerationRequest.Error"/> says why.</summary>
    Error,
}

/// <summary>
/// One request handed to the <see cref="BatchScheduler"/>: a prompt of token ids, how many tokens to generate at most,
/// the sampler, and the token ids that end it. The scheduler writes each chosen token to <see cref="Tokens"/> and
/// completes the channel when the request ends (<see cref="Finish"/> then says why). Cancel it with the token given
/// at construction; its KV lane is freed at the next step boundary.
/// </summary>
public sealed class GenerationRequest
{
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Channel<int> _tokens = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleWriter = true });

    public GenerationRequest(int[] prompt, int maxTokens, Sampler sampler, IReadOnlyCollection<int> stopTokenIds, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfZero(prompt.Length, nameof(prompt));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokens);
        Prompt = prompt;
        MaxTokens = maxTokens;
        Sampler = sampler;
        StopTokenIds = stopTokenIds;
        CancellationToken = cancellationToken;
    }

    public int[] Prompt { get; }

    public int MaxTokens { get; }

    public Sampler Sampler { get; }

    public IReadOnlyCollection<int> StopTokenIds { get; }

    public CancellationToken CancellationToken { get; }

    /// <summary>Chosen token ids as they come; completed when the request ends.</summary>
    public ChannelReader<int> Tokens => _tokens.Reader;

    /// <summary>Completes when the request has ended and left the batch (tokens may still be unread).</summary>
    public Task Ended => _ended.Task;

    /// <summary>Why it ended; set before <see cref="Tokens"/> completes.</summary>
    public FinishReason Finish { get; private set; }

    /// <summary>The engine's error when <see cref="Finish"/> is <see cref="FinishReason.Error"/>.</summary>
    public string? Error { get; private set; }

    /// <summary>Tokens generated so far (stop tokens excluded).</summary>
    public int Generated { get; internal set; }

    /// <summary>Prompt tokens already run through the model.</summary>
    internal int Prefilled { get; set; }

    internal int Lane { get; set; } = -1;

    /// <summary>The last token chosen, which the next decode step feeds in.</summary>
    internal int LastToken { get; set; }

    internal long EnqueuedTicks { get; set; }

    internal long LastTokenTicks { get; set; }

    internal void Emit(int token) => _tokens.Writer.TryWrite(token);

    internal void Complete(FinishReason reason, string? error = null)
    {
        Finish = reason;
        Error = error;
        _tokens.Writer.TryComplete();
        _ended.TrySetResult();
    }
}
