using System.Diagnostics;
using Fabric.Common;
using Fabric.Engine.Runtime;

namespace Fabric.Engine.Serving;

/// <summary>Why <see cref="BatchScheduler.TryEnqueue"/> refused a request.</summary>
public enum AdmissionRefusal
{
    None,

    /// <summary>The waiting queue holds its maximum.</summary>
    QueueFull,

    /// <summary>The scheduler is draining or stopped.</summary>
    Draining,
}

/// <summary>
/// Continuous batching over one <see cref="MoeEngine"/>: up to <see cref="MaxBatch"/> sequences run together, each
/// in its own KV lane; new requests join at step boundaries when a lane is free and wait in a bounded queue
/// otherwise. Every step feeds one token of each decoding sequence, then fills the rest of the step
/// (<see cref="MoeEngine.MaxStepTokens"/> rows) with prompt chunks of the sequences still prefilling, oldest first, so a
/// long prompt is prefilled in chunks between decode steps while running streams keep flowing. A cancelled request
/// leaves at the next step boundary and its lane is free at once. One loop owns the engine; other threads only
/// enqueue and read results.
/// </summary>
public sealed class BatchScheduler : IAsyncDisposable
{
    private readonly MoeEngine _engine;
    private readonly KvLanes _lanes;
    private readonly Queue<GenerationRequest> _waiting = new();
    private readonly List<GenerationRequest> _running = [];
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int[] _stepTokens;
    private readonly BatchSegment[] _segments;
    private readonly GenerationRequest[] _segmentOwners;
    private readonly Task _loop;
    private bool _draining;
    private int _step;

    /// <remarks>maxBatch: sequences decoding together (at most the engine's KV lanes and its step rows). maxWaiting: requests queued beyond them before 429.</remarks>
    public BatchScheduler(MoeEngine engine, int maxBatch, int maxWaiting)
    {
        if (maxBatch <= 0 || maxBatch > engine.Options.MaxBatch)
            throw new FabricException($"--max-batch {maxBatch} must lie between 1 and the {engine.Options.MaxBatch} sequences the KV cache holds.");
        if (maxBatch > engine.MaxStepTokens)
            throw new FabricException($"--max-batch {maxBatch} exceeds the {engine.MaxStepTokens} token rows one step holds (--prefill-chunk).");
        ArgumentOutOfRangeException.ThrowIfNegative(maxWaiting);
        _engine = engine;
        MaxBatch = maxBatch;
        MaxWaiting = maxWaiting;
        _lanes = new KvLanes(maxBatch, engine.Options.MaxSeqLen);
        _stepTokens = new int[engine.MaxStepTokens];
        _segments = new BatchSegment[engine.MaxStepTokens];
        _segmentOwners = new GenerationRequest[engine.MaxStepTokens];
        Metrics.KvLanesTotal = _lanes.Lanes;
        Metrics.KvBlocksTotal = _lanes.TotalBlocks;
        _loop = Task.Factory.StartNew(RunAsync, TaskCreationOptions.LongRunning).Unwrap();
    }

    public int MaxBatch { get; }

    public int MaxWaiting { get; }

    /// <summary>Positions one sequence may reach (prompt plus generated tokens).</summary>
    public int MaxSequenceLength => _engine.Options.MaxSeqLen;

    public ServingMetrics Metrics { get; } = new();

    public MoeEngine Engine => _engine;

    /// <summary>True once <see cref="BeginDrain"/> was called.</summary>
    public bool Draining
    {
        get
        {
            lock (_lock)
                return _draining;
        }
    }

    /// <summary>
    /// Queues <paramref name="request"/>; it joins the batch at a step boundary once a lane is free. Refuses when the
    /// waiting queue is full or the scheduler is draining. Prompts longer than <see cref="MaxSequenceLength"/> are the
    /// caller's to refuse.
    /// </summary>
    public AdmissionRefusal TryEnqueue(GenerationRequest request)
    {
        if (request.Prompt.Length > MaxSequenceLength)
            throw new ArgumentException($"The prompt of {request.Prompt.Length} tokens exceeds the {MaxSequenceLength} positions a sequence holds.", nameof(request));
        lock (_lock)
        {
            if (_draining)
                return AdmissionRefusal.Draining;
            if (_waiting.Count >= MaxWaiting + Math.Max(0, MaxBatch - _running.Count))
            {
                Metrics.AddRejected();
                return AdmissionRefusal.QueueFull;
            }
            request.EnqueuedTicks = Stopwatch.GetTimestamp();
            _waiting.Enqueue(request);
            Metrics.Waiting = _waiting.Count;
        }
        request.CancellationToken.UnsafeRegister(static s => ((BatchScheduler)s!).Wake(), this);
        _wake.Release();
        return AdmissionRefusal.None;
    }

    /// <summary>Stops admitting; the returned task completes when every queued and running request has ended.</summary>
    public Task BeginDrain()
    {
        lock (_lock)
        {
            _draining = true;
            if (_waiting.Count == 0 && _running.Count == 0)
                _idle.TrySetResult();
        }
        _wake.Release();
        return _idle.Task;
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (ObjectDisposedException)
        {
            // Cancelled after the scheduler stopped: nothing left to wake.
        }
    }

    private async Task RunAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            Admit();
            RemoveCancelled();
            if (_running.Count == 0)
            {
                lock (_lock)
                {
                    if (_draining && _waiting.Count == 0)
                        _idle.TrySetResult();
                }
                try
                {
                    await _wake.WaitAsync(token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                continue;
            }
            await StepAsync(token).ConfigureAwait(false);
        }
        FailAll(FinishReason.Cancelled, null);
    }

    private void Admit()
    {
        lock (_lock)
        {
            while (_waiting.Count > 0 && _running.Count < MaxBatch)
            {
                var r = _waiting.Peek();
                if (r.CancellationToken.IsCancellationRequested)
                {
                    _waiting.Dequeue();
                    Finish(r, FinishReason.Cancelled);
                    continue;
                }
                if (!_lanes.TryTake(out var lane))
                    break;
                _waiting.Dequeue();
                r.Lane = lane;
                _running.Add(r);
                Metrics.AddPromptTokens(r.Prompt.Length);
            }
            UpdateGauges();
        }
    }

    private void RemoveCancelled()
    {
        for (var i = _running.Count - 1; i >= 0; i--)
        {
            if (_running[i].CancellationToken.IsCancellationRequested)
                End(i, FinishReason.Cancelled);
        }
    }

    private async Task StepAsync(CancellationToken token)
    {
        var rows = 0;
        var segments = 0;
        // Decode first: one row per sequence past its prompt.
        foreach (var r in _running)
        {
            if (r.Prefilled < r.Prompt.Length)
                continue;
            _stepTokens[rows] = r.LastToken;
            _segments[segments] = new BatchSegment(r.Lane, r.Prompt.Length + r.Generated - 1, 1, true);
            _segmentOwners[segments++] = r;
            rows++;
        }
        // Then prompt chunks, oldest request first, into whatever rows the step has left.
        foreach (var r in _running)
        {
            var left = r.Prompt.Length - r.Prefilled;
            if (left <= 0 || rows == _stepTokens.Length)
                continue;
            var n = Math.Min(left, _stepTokens.Length - rows);
            r.Prompt.AsSpan(r.Prefilled, n).CopyTo(_stepTokens.AsSpan(rows));
            _segments[segments] = new BatchSegment(r.Lane, r.Prefilled, n, n == left);
            _segmentOwners[segments++] = r;
            rows += n;
        }
        float[] logits;
        try
        {
            logits = await _engine.StepAsync(_stepTokens.AsMemory(0, rows), _segments.AsMemory(0, segments), _step++, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            return;
        }
        catch (FabricException e)
        {
            // The step failed as a whole (no pool could serve an expert): every sequence in it ends with the reason.
            for (var i = 0; i < segments; i++)
            {
                var owner = _segmentOwners[i];
                var at = _running.IndexOf(owner);
                if (at >= 0)
                    End(at, FinishReason.Error, e.Message);
            }
            return;
        }
        Metrics.Steps++;
        var vocab = _engine.Config.VocabSize;
        var now = Stopwatch.GetTimestamp();
        for (var i = 0; i < segments; i++)
        {
            var r = _segmentOwners[i];
            var s = _segments[i];
            if (s.StartPosition < r.Prompt.Length)
                r.Prefilled += s.Tokens;
            if (!s.WantsLogits)
            {
                _lanes.SetPositions(r.Lane, r.Prefilled);
                continue;
            }
            var next = r.Sampler.Next(logits.AsSpan(i * vocab, vocab));
            var first = r.Generated == 0;
            if (first)
                Metrics.TimeToFirstToken.Observe(Stopwatch.GetElapsedTime(r.EnqueuedTicks, now).TotalSeconds);
            else
                Metrics.InterTokenLatency.Observe(Stopwatch.GetElapsedTime(r.LastTokenTicks, now).TotalSeconds);
            r.LastTokenTicks = now;
            _lanes.SetPositions(r.Lane, r.Prompt.Length + r.Generated);
            if (r.StopTokenIds.Contains(next))
            {
                End(_running.IndexOf(r), FinishReason.Stop);
                continue;
            }
            r.LastToken = next;
            r.Generated++;
            Metrics.AddCompletionToken();
            r.Emit(next);
            // The next decode would run this token at position prompt + generated − 1.
            if (r.Generated >= r.MaxTokens || r.Prompt.Length + r.Generated > MaxSequenceLength)
                End(_running.IndexOf(r), FinishReason.Length);
        }
        UpdateGaugesLocked();
    }

    private void End(int index, FinishReason reason, string? error = null)
    {
        GenerationRequest r;
        lock (_lock)
        {
            r = _running[index];
            _running.RemoveAt(index);
            _lanes.Release(r.Lane);
            r.Lane = -1;
            UpdateGauges();
        }
        Finish(r, reason, error);
    }

    private void Finish(GenerationRequest r, FinishReason reason, string? error = null)
    {
        Metrics.AddFinished();
        r.Complete(reason, error);
    }

    private void FailAll(FinishReason reason, string? error)
    {
        while (_running.Count > 0)
            End(_running.Count - 1, reason, error);
        lock (_lock)
        {
            while (_waiting.TryDequeue(out var r))
                Finish(r, reason, error);
            UpdateGauges();
            _idle.TrySetResult();
        }
    }

    private void UpdateGaugesLocked()
    {
        lock (_lock)
            UpdateGauges();
    }

    private void UpdateGauges()
    {
        Metrics.Running = _running.Count;
        Metrics.Waiting = _waiting.Count;
        Metrics.KvLanesUsed = _lanes.UsedLanes;
        Metrics.KvBlocksUsed = _lanes.UsedBlocks;
    }

    /// <summary>Stops the loop: running and queued requests end as cancelled. Does not dispose the engine.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_lock)
            _draining = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
        _wake.Dispose();
    }
}
