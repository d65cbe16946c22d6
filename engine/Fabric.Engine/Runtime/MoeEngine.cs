using System.Diagnostics;
using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Paging;
using Fabric.Engine.Runtime.Families;
using Fabric.Engine.Sources;
using Fabric.Model;

namespace Fabric.Engine.Runtime;

/// <summary>
/// The forward pass of every family in <see cref="Architectures"/> with bounded expert residency: dense weights and the KV cache stay on the device, experts
/// (of the sparse layers) are paged through the <see cref="ExpertPager"/> from an <see cref="IWeightSource"/> into expert slots, with fetches
/// (pinned staging → checksum → slot copy) overlapping compute. One compute thread drives the device and the pager;
/// fetches run on the thread pool. What differs between families lives in <see cref="Families"/>: the attention block,
/// the dense and shared MLPs, and the routing step; the pager's layers are the expert layers (sparse layers only).
/// </summary>
public sealed class MoeEngine : IAsyncDisposable
{
    private readonly IComputeDevice _device;
    private readonly IWeightSource _source;
    private readonly EngineOptions _options;
    private readonly ModelConfig _config;
    private readonly DenseWeights _dense;
    private readonly AttentionBlock _attention;
    private readonly SharedMlp _sharedMlp;
    private readonly FamilyRouter _router;
    private readonly DeviceBuffer _slots;
    private readonly ExpertSlotLayout _layout;
    private readonly List<DeviceBuffer> _owned = [];
    private readonly DeviceBuffer _h, _x, _o, _routerLogits, _predictLogits, _pairs, _logits;
    private readonly ExpertScratch _expertScratch;
    private readonly int _chunk;
    private readonly int _topK;
    private readonly int[] _indices;
    private readonly float[] _weights;
    private readonly int[] _predictIndices;
    private readonly float[] _predictWeights;
    private readonly int[] _predicted;
    private int _predictedCount;
    private readonly bool[] _mark;
    private readonly ExpertAssignment[] _plan;
    private readonly ExpertAssignment[] _prefetches;
    private readonly int[] _rowsIn;
    private readonly int[] _rowsOut;
    private readonly int[] _positions;
    private readonly float[] _logitsHost;
    private readonly float[] _batchLogitsHost;
    private readonly BatchSegment[] _single = new BatchSegment[1];
    private readonly List<ExpertKey> _computed = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ExpertFetches _fetches;
    private int _step;
    private int _layer;

    private MoeEngine(IComputeDevice device, IWeightSource source, EngineOptions options, DenseWeights dense, MemoryPlan plan)
    {
        _device = device;
        _source = source;
        _options = options;
        _config = source.Config;
        _dense = dense;
        _layout = source.ExpertLayout;
        Plan = plan;
        var c = _config;
        _chunk = Math.Max(1, options.PrefillChunk);
        _topK = c.NumExpertsPerTok;
        _attention = AttentionBlock.Create(c, options, device, dense, Own);
        _h = Floats(_chunk * c.HiddenSize, "hidden states");
        _x = Floats(_chunk * c.HiddenSize, "normed hidden states");
        _o = Floats(_chunk * c.HiddenSize, "attention projection");
        _routerLogits = Floats(_chunk * c.NumLocalExperts, "router logits");
        _predictLogits = Floats(_chunk * c.NumLocalExperts, "next-layer router logits");
        _pairs = Floats(_chunk * _topK * c.HiddenSize, "expert outputs");
        _logits = Floats(c.VocabSize, "logits");
        _expertScratch = new ExpertScratch(_chunk,
            Floats(_chunk * c.HiddenSize, "expert input"),
            Floats(_chunk * MemoryPlan.ExpertScratchWidth(c), "expert gate"),
            Floats(_chunk * MemoryPlan.ExpertScratchWidth(c), "expert up"),
            Floats(_chunk * c.HiddenSize, "expert output"));
        _sharedMlp = new SharedMlp(c, options, device, dense, Own);
        _router = new FamilyRouter(c, _chunk);
        _slots = Own(plan.Slots * _layout.SlotBytes, "expert slots");

        Pager = ExpertPager.Create(new PagerSettings(c.ExpertLayers, c.NumLocalExperts, _topK, plan.Slots, options.Policy, options.Prefetch)
        {
            FutureAccesses = options.FutureAccesses,
        });

        _indices = new int[_chunk * _topK];
        _weights = new float[_chunk * _topK];
        _predictIndices = new int[_chunk * _topK];
        _predictWeights = new float[_chunk * _topK];
        _predicted = new int[c.NumLocalExperts];
        _mark = new bool[c.NumLocalExperts];
        _plan = new ExpertAssignment[c.NumLocalExperts];
        _prefetches = new ExpertAssignment[c.NumLocalExperts];
        _rowsIn = new int[_chunk];
        _rowsOut = new int[_chunk];
        _positions = new int[_chunk];
        _logitsHost = new float[c.VocabSize];
        _batchLogitsHost = new float[_chunk * c.VocabSize];
        Memory<byte>[]? slotMemory = null;
        if (options.ReadIntoHostSlots && device is IHostVisibleMemory host)
            slotMemory = [.. Enumerable.Range(0, plan.Slots).Select(s => host.HostMemory(_slots, s * _layout.SlotBytes, checked((int)_layout.SlotBytes)))];
        _fetches = new ExpertFetches(source, device, _slots, slotMemory, Pager, Counters, _clock, options.StagingBuffers);
        Counters.LayerStallNs = new long[c.ExpertLayers];
    }

    /// <summary>How the device budget was split.</summary>
    public MemoryPlan Plan { get; }

    public ModelConfig Config => _config;

    public ExpertPager Pager { get; }

    public EngineCounters Counters { get; } = new();

    public IComputeDevice Device => _device;

    public IWeightSource Source => _source;

    public EngineOptions Options => _options;

    /// <summary>Receives one record per (step, layer) visit when set.</summary>
    public RoutingTraceWriter? Trace { get; set; }

    /// <summary>Time the last <see cref="ForwardAsync"/> spent in layer visits (compute and stall), ns; the rest of a
    /// step (embedding, final norm, LM head, sampling) is outside them.</summary>
    public long LastForwardLayerNs { get; private set; }

    /// <summary>
    /// Plans the budget, reserves dense weights, KV cache, scratch and slots on <paramref name="device"/>, loads the
    /// dense weights, and (when every expert fits and the options ask for it) loads every expert.
    /// </summary>
    public static async Task<MoeEngine> CreateAsync(IComputeDevice device, IWeightSource source, EngineOptions options, CancellationToken cancellationToken = default)
    {
        var config = source.Config;
        if (options.MaxSeqLen <= 0 || options.MaxBatch <= 0)
            throw new FabricException("An engine needs a positive maximum sequence length and batch size.");
        var plan = MemoryPlan.Create(config, DenseWeights.DeviceBytes(source), source.ExpertLayout, options, device.Memory.CapacityBytes - device.Memory.UsedBytes);
        var dense = await DenseWeights.LoadAsync(device, source, cancellationToken).ConfigureAwait(false);
        MoeEngine? engine = null;
        try
        {
            engine = new MoeEngine(device, source, options, dense, plan);
            if (options.PreloadWhenAllFit && plan.Slots >= config.TotalExperts)
                await engine.PreloadAllAsync(cancellationToken).ConfigureAwait(false);
            return engine;
        }
        catch
        {
            if (engine is not null)
                await engine.DisposeAsync().ConfigureAwait(false);
            else
                dense.Dispose();
            throw;
        }
    }

    /// <summary>The most token rows one <see cref="StepAsync"/> takes (the prefill chunk the scratch is sized for).</summary>
    public int MaxStepTokens => _chunk;

    /// <summary>
    /// Runs <paramref name="tokens"/> of sequence <paramref name="sequence"/> at positions startPosition.. through the
    /// model and returns the logits of the last token (a buffer reused by the next call). <paramref name="step"/> is
    /// the trace's step number (0 = prefill). A fetch that no pool endpoint can serve throws
    /// <see cref="FabricException"/>; the KV cache of earlier positions stays intact.
    /// </summary>
    public async ValueTask<float[]> ForwardAsync(ReadOnlyMemory<int> tokens, int startPosition, int sequence, int step, CancellationToken cancellationToken = default)
    {
        if (tokens.Length == 0)
            throw new ArgumentException("Nothing to compute: no tokens.", nameof(tokens));
        if (startPosition + tokens.Length > _options.MaxSeqLen)
            throw new FabricException($"The sequence would reach {startPosition + tokens.Length} positions, more than the {_options.MaxSeqLen} this engine holds.");
        if ((uint)sequence >= (uint)_options.MaxBatch)
            throw new ArgumentOutOfRangeException(nameof(sequence), $"Sequence {sequence} is outside this engine's batch of {_options.MaxBatch}.");
        var last = 0;
        LastForwardLayerNs = 0;
        for (var start = 0; start < tokens.Length; start += _chunk)
        {
            var n = Math.Min(_chunk, tokens.Length - start);
            _single[0] = new BatchSegment(sequence, startPosition + start, n, false);
            await ForwardChunkAsync(tokens.Slice(start, n), n, _single, step, cancellationToken).ConfigureAwait(false);
            last = n - 1;
        }
        LmHead(last, _logitsHost);
        return _logitsHost;
    }

    /// <summary>
    /// One batched step: the token rows of several sequences at once, each segment at its own positions in its own KV
    /// lane (<paramref name="segments"/> in row order; their token counts sum to tokens.Length, at most
    /// <see cref="MaxStepTokens"/>; no lane twice). Each layer pages in the union of the experts the whole batch
    /// routed to, once, and computes each expert's rows together; prefetch predicts for the whole batch. Returns the
    /// logits of segment i (when it <see cref="BatchSegment.WantsLogits"/>) at [i × vocab, (i + 1) × vocab) of a
    /// buffer reused by the next call. Every kernel reduces a row in the same order whatever else is in the batch, so
    /// a sequence's logits are bit-identical alone or beside others.
    /// </summary>
    public async ValueTask<float[]> StepAsync(ReadOnlyMemory<int> tokens, ReadOnlyMemory<BatchSegment> segments, int step, CancellationToken cancellationToken = default)
    {
        var n = tokens.Length;
        if (n == 0 || segments.Length == 0)
            throw new ArgumentException("Nothing to compute: no tokens.", nameof(tokens));
        if (n > _chunk)
            throw new ArgumentException($"{n} token rows exceed the {_chunk} one step holds.", nameof(tokens));
        CheckSegments(segments.Span, n);
        LastForwardLayerNs = 0;
        await ForwardChunkAsync(tokens, n, segments, step, cancellationToken).ConfigureAwait(false);
        var vocab = _config.VocabSize;
        var row = 0;
        for (var i = 0; i < segments.Length; i++)
        {
            var s = segments.Span[i];
            row += s.Tokens;
            if (s.WantsLogits)
                LmHead(row - 1, _batchLogitsHost.AsSpan(i * vocab, vocab));
        }
        return _batchLogitsHost;
    }

    private void CheckSegments(ReadOnlySpan<BatchSegment> segments, int n)
    {
        var rows = 0;
        for (var i = 0; i < segments.Length; i++)
        {
            var s = segments[i];
            if ((uint)s.Sequence >= (uint)_options.MaxBatch)
                throw new ArgumentOutOfRangeException(nameof(segments), $"Sequence {s.Sequence} is outside this engine's batch of {_options.MaxBatch}.");
            if (s.Tokens <= 0 || s.StartPosition < 0)
                throw new ArgumentException($"Segment {i} has {s.Tokens} tokens at position {s.StartPosition}.", nameof(segments));
            if (s.StartPosition + s.Tokens > _options.MaxSeqLen)
                throw new FabricException($"The sequence would reach {s.StartPosition + s.Tokens} positions, more than the {_options.MaxSeqLen} this engine holds.");
            for (var j = 0; j < i; j++)
            {
                if (segments[j].Sequence == s.Sequence)
                    throw new ArgumentException($"Sequence {s.Sequence} appears twice in one step.", nameof(segments));
            }
            rows += s.Tokens;
        }
        if (rows != n)
            throw new ArgumentException($"The segments hold {rows} rows but {n} tokens were given.", nameof(segments));
    }

    /// <summary>Final norm and LM head on hidden row <paramref name="row"/>, one row at a time (the same kernels whatever the batch).</summary>
    private void LmHead(int row, Span<float> destination)
    {
        var hidden = _config.HiddenSize;
        _device.Copy(_h, (long)row * hidden * sizeof(float), _x, 0, hidden * sizeof(float));
        _device.RmsNorm(_x, _dense.FinalNorm, _x, 1, (float)_config.RmsNormEps);
        _device.MatMul(_x, 1, _dense.LmHead, _logits);
        _device.Download(_logits, 0, System.Runtime.InteropServices.MemoryMarshal.AsBytes(destination));
    }

    private async ValueTask ForwardChunkAsync(ReadOnlyMemory<int> tokens, int n, ReadOnlyMemory<BatchSegment> segments, int step, CancellationToken cancellationToken)
    {
        var c = _config;
        var eps = (float)c.RmsNormEps;
        _step = step;
        var row = 0;
        foreach (var s in segments.Span)
        {
            for (var r = 0; r < s.Tokens; r++)
                _positions[row + r] = s.StartPosition + r;
            row += s.Tokens;
        }
        _device.Embed(_dense.Embedding, tokens.Span, _h);
        for (var layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            var started = _clock.ElapsedTicks;
            var w = _dense.Layers[layer];
            _device.RmsNorm(_h, w.InputNorm, _x, n, eps);
            _attention.Forward(_x, n, layer, segments.Span, _positions.AsSpan(0, n), _o);
            _device.Add(_h, _o, n * c.HiddenSize);
            _device.RmsNorm(_h, w.PostNorm, _x, n, eps);
            var expertLayer = c.ExpertLayerOf(layer);
            if (expertLayer < 0)
            {
                _sharedMlp.AddTo(_h, _x, n, layer, _expertScratch);
                var dense = TicksToNs(_clock.ElapsedTicks - started);
                Counters.ComputeNs += dense;
                LastForwardLayerNs += dense;
                continue;
            }
            _device.MatMul(_x, n, w.Router!.Value, _routerLogits);
            _router.Route(_device, _routerLogits, n, _indices.AsSpan(0, n * _topK), _weights.AsSpan(0, n * _topK));
            var stall = await MoeAsync(expertLayer, layer, n, cancellationToken).ConfigureAwait(false);
            _device.MoeCombine(_pairs, _weights.AsSpan(0, n * _topK), n, _topK, c.HiddenSize, _h);
            if (_sharedMlp.Has(layer))
                _sharedMlp.AddTo(_h, _x, n, layer, _expertScratch);
            var elapsed = TicksToNs(_clock.ElapsedTicks - started);
            Counters.StallNs += stall;
            Counters.LayerStallNs[expertLayer] += stall;
            Counters.ComputeNs += elapsed - stall;
            LastForwardLayerNs += elapsed;
            Trace?.WriteRoute(step, expertLayer, _positions.AsSpan(0, n), _indices.AsSpan(0, n * _topK), _weights.AsSpan(0, n * _topK), _topK, elapsed - stall, stall,
                _predicted.AsSpan(0, _predictedCount));
        }
    }

    /// <summary>The sparse MoE block of expert layer <paramref name="layer"/> (model layer <paramref name="modelLayer"/>): page in the routed experts and compute each into its (token, rank) rows. Returns stall ns.</summary>
    private async ValueTask<long> MoeAsync(int layer, int modelLayer, int n, CancellationToken cancellationToken)
    {
        long stall = 0;
        _layer = layer;
        _fetches.Harvest();
        var count = Pager.BeginLayer(layer, _indices.AsSpan(0, n * _topK), _plan);
        try
        {
            for (var i = 0; i < count; i++)
            {
                if (_plan[i].Kind == AssignmentKind.Fetch)
                    _fetches.Start(_plan[i], _step, _layer, cancellationToken);
            }
            IssuePrefetch(layer, modelLayer, n, cancellationToken);

            _computed.Clear();
            for (var i = 0; i < count; i++)
            {
                if (_plan[i].Kind == AssignmentKind.Hit)
                    ComputeExpert(_plan[i], n);
            }
            for (var i = 0; i < count; i++)
            {
                var a = _plan[i];
                if (a.Kind is AssignmentKind.Pending or AssignmentKind.Fetch)
                {
                    stall += await _fetches.WaitAsync(a.Key).ConfigureAwait(false);
                    ComputeExpert(a, n);
                }
            }
            while (Pager.DeferredCount > 0)
            {
                foreach (var key in _computed)
                    Pager.Release(key);
                _computed.Clear();
                var d = Pager.AssignDeferred(_plan);
                var assigned = 0;
                for (var i = 0; i < d; i++)
                {
                    if (_plan[i].Kind == AssignmentKind.Fetch)
                    {
                        _fetches.Start(_plan[i], _step, _layer, cancellationToken);
                        assigned++;
                    }
                }
                if (assigned == 0)
                {
                    // Every free slot is still loading: let those fetches land, then try again.
                    stall += await _fetches.DrainAsync(abandonFailures: true).ConfigureAwait(false);
                    continue;
                }
                for (var i = 0; i < d; i++)
                {
                    if (_plan[i].Kind == AssignmentKind.Fetch)
                    {
                        stall += await _fetches.WaitAsync(_plan[i].Key).ConfigureAwait(false);
                        ComputeExpert(_plan[i], n);
                    }
                }
            }
        }
        catch
        {
            // Let every fetch in flight land (or fail) before the slots are touched again; the KV cache is untouched.
            await _fetches.DrainAsync(abandonFailures: true).ConfigureAwait(false);
            Pager.EndLayer();
            throw;
        }
        Pager.EndLayer();
        return stall;
    }

    private void IssuePrefetch(int layer, int modelLayer, int n, CancellationToken cancellationToken)
    {
        var prefetcher = Pager.Prefetcher;
        // A traced run records what the predictor chose even when it does not prefetch, so that replays can use it.
        _predictedCount = (prefetcher.WantsRouterPrediction && prefetcher.Prefetches) || Trace is not null ? PredictNextLayer(layer, modelLayer, n) : 0;
        if (!prefetcher.Prefetches)
            return;
        var m = Pager.PrefetchNext(prefetcher.WantsRouterPrediction ? _predicted.AsSpan(0, _predictedCount) : [], _prefetches);
        for (var i = 0; i < m; i++)
            _fetches.Start(_prefetches[i], _step, _layer, cancellationToken);
    }

    // The next sparse layer's router applied to this layer's hidden state: the cheap, well-known predictor. Fills
    // _predicted with the distinct experts it names and returns their count (0 at the last expert layer).
    private int PredictNextLayer(int layer, int modelLayer, int n)
    {
        var next = modelLayer + 1;
        while (next < _config.NumHiddenLayers && !_config.IsSparseLayer(next))
            next++;
        if (layer + 1 >= _config.ExpertLayers || next >= _config.NumHiddenLayers)
            return 0;
        var predicted = 0;
        var e = _config.NumLocalExperts;
        _device.MatMul(_x, n, _dense.Layers[next].Router!.Value, _predictLogits);
        _device.RouterTopK(_predictLogits, n, e, _topK, _predictIndices.AsSpan(0, n * _topK), _predictWeights.AsSpan(0, n * _topK));
        for (var i = 0; i < n * _topK; i++)
        {
            var x = _predictIndices[i];
            if (!_mark[x])
            {
                _mark[x] = true;
                _predicted[predicted++] = x;
            }
        }
        for (var i = 0; i < predicted; i++)
            _mark[_predicted[i]] = false;
        return predicted;
    }

    private void ComputeExpert(ExpertAssignment a, int n)
    {
        var count = 0;
        for (var r = 0; r < n; r++)
        {
            for (var j = 0; j < _topK; j++)
            {
                if (_indices[(r * _topK) + j] == a.Key.Expert)
                {
                    _rowsIn[count] = r;
                    _rowsOut[count] = (r * _topK) + j;
                    count++;
                }
            }
        }
        _device.ExpertForward(_layout.View(_slots, a.Slot), _x, _rowsIn.AsSpan(0, count), _pairs, _rowsOut.AsSpan(0, count), _expertScratch);
        _computed.Add(a.Key);
    }

    private async Task PreloadAllAsync(CancellationToken cancellationToken)
    {
        var before = Counters.BytesFetched;
        for (var l = 0; l < _config.ExpertLayers; l++)
        {
            for (var e = 0; e < _config.NumLocalExperts; e++)
            {
                var a = Pager.Preload(new ExpertKey(l, e));
                if (a.Kind == AssignmentKind.Fetch)
                    _fetches.Start(a, _step, _layer, cancellationToken);
            }
            await _fetches.DrainAsync(abandonFailures: false).ConfigureAwait(false);
        }
        Counters.PreloadBytes = Counters.BytesFetched - before;
        Counters.ResetFetches();
    }

    private DeviceBuffer Own(long bytes, string purpose)
    {
        var b = _device.Allocate(bytes, purpose);
        _owned.Add(b);
        return b;
    }

    private DeviceBuffer Floats(long count, string purpose) => Own(count * sizeof(float), purpose);

    private static long TicksToNs(long ticks) => (long)(ticks * (1e9 / Stopwatch.Frequency));

    public async ValueTask DisposeAsync()
    {
        await _fetches.DisposeAsync().ConfigureAwait(false);
        foreach (var b in _owned)
            b.Dispose();
        _dense.Dispose();
    }
}
