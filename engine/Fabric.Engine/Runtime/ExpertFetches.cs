using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;
using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Paging;
using Fabric.Engine.Sources;

namespace Fabric.Engine.Runtime;

/// <summary>
/// The engine's side of the fetch path: the fetches in flight into expert slots. Each runs on the thread pool —
/// the source reads and verifies the block (into the slot itself when the device's slots are host-visible, else
/// into pinned staging that is then copied to the slot) — and is reported to the pager when the compute thread
/// harvests or waits for it. Fetch jobs and staging buffers are pooled, so starting a fetch allocates nothing once
/// warm. All members but the fetch bodies run on the compute thread.
/// </summary>
internal sealed class ExpertFetches : IAsyncDisposable
{
    private readonly IWeightSource _source;
    private readonly IComputeDevice _device;
    private readonly DeviceBuffer _slots;
    private readonly ExpertSlotLayout _layout;
    private readonly Memory<byte>[]? _slotMemory;
    private readonly ExpertPager _pager;
    private readonly EngineCounters _counters;
    private readonly Stopwatch _clock;
    private readonly Dictionary<ExpertKey, FetchJob> _inFlight = [];
    private readonly List<ExpertKey> _harvest = [];
    private readonly Stack<FetchJob> _idle = new();
    private readonly ConcurrentQueue<NativeBuffer> _staging = new();
    private readonly SemaphoreSlim _stagingFree;

    /// <summary>
    /// Fetches into <paramref name="slots"/> on <paramref name="device"/>; <paramref name="slotMemory"/> is each slot as
    /// host memory when the device's slots are host-visible (read into directly), else null.
    /// </summary>
    public ExpertFetches(IWeightSource source, IComputeDevice device, DeviceBuffer slots, Memory<byte>[]? slotMemory, ExpertPager pager,
        EngineCounters counters, Stopwatch clock, int stagingBuffers)
    {
        _source = source;
        _device = device;
        _slots = slots;
        _layout = source.ExpertLayout;
        _slotMemory = slotMemory;
        _pager = pager;
        _counters = counters;
        _clock = clock;
        var count = Math.Max(2, stagingBuffers);
        for (var i = 0; i < count; i++)
            _staging.Enqueue(new NativeBuffer(_layout.SlotBytes));
        _stagingFree = new SemaphoreSlim(count, count);
    }

    /// <summary>
    /// Starts fetching <paramref name="a"/>'s expert into its slot. (<paramref name="step"/>, <paramref name="layer"/>)
    /// is the visit that issued it (a prefetch is for the next layer but issued in this one).
    /// </summary>
    public void Start(ExpertAssignment a, int step, int layer, CancellationToken cancellationToken)
    {
        FetchJob job;
        lock (_idle)
            job = _idle.Count > 0 ? _idle.Pop() : new FetchJob(this);
        job.Prepare(a.Key, a.Slot, step, layer, _clock.ElapsedTicks, cancellationToken);
        _inFlight[a.Key] = job;
        ThreadPool.UnsafeQueueUserWorkItem(job, preferLocal: false);
    }

    /// <summary>Waits for the fetch of <paramref name="key"/> and marks its slot ready; returns the ns waited. A failed fetch throws.</summary>
    public async ValueTask<long> WaitAsync(ExpertKey key)
    {
        var job = _inFlight[key];
        long waited = 0;
        if (!job.IsCompleted)
        {
            var started = _clock.ElapsedTicks;
            await job.WhenDone().ConfigureAwait(false);
            waited = TicksToNs(_clock.ElapsedTicks - started);
        }
        Complete(key, job, throwOnFailure: true);
        return waited;
    }

    /// <summary>Reports every fetch that has landed to the pager, without waiting; failures are abandoned.</summary>
    public void Harvest()
    {
        _harvest.Clear();
        foreach (var (key, job) in _inFlight)
        {
            if (job.IsCompleted)
                _harvest.Add(key);
        }
        foreach (var key in _harvest)
            Complete(key, _inFlight[key], throwOnFailure: false);
    }

    /// <summary>Waits for every fetch in flight; returns the ns waited. Failures throw unless <paramref name="abandonFailures"/>.</summary>
    public async ValueTask<long> DrainAsync(bool abandonFailures)
    {
        var started = _clock.ElapsedTicks;
        _harvest.Clear();
        _harvest.AddRange(_inFlight.Keys);
        foreach (var key in _harvest)
        {
            var job = _inFlight[key];
            if (!job.IsCompleted)
                await job.WhenDone().ConfigureAwait(false);
            Complete(key, job, throwOnFailure: !abandonFailures);
        }
        return TicksToNs(_clock.ElapsedTicks - started);
    }

    private void Complete(ExpertKey key, FetchJob job, bool throwOnFailure)
    {
        _inFlight.Remove(key);
        var (bytes, error) = (job.Bytes, job.Error);
        job.Release();
        if (error is null)
        {
            _counters.AddFetch(bytes);
            _pager.FetchCompleted(key);
            return;
        }
        _pager.FetchAbandoned(key);
        if (throwOnFailure)
        {
            if (error is FabricException or OperationCanceledException)
                ExceptionDispatchInfo.Throw(error);
            throw new FabricException($"Fetching expert {key.Layer}/{key.Expert} failed: {error.Message}.", error);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<long> FetchAsync(FetchJob job)
    {
        await _stagingFree.WaitAsync(job.Token).ConfigureAwait(false);
        _staging.TryDequeue(out var staging);
        var started = _clock.ElapsedTicks;
        try
        {
            // Host-visible slots (the CPU device) are read into directly; the slot stays "loading" — unusable — until
            // the source has verified the checksum there. Otherwise: pinned staging, verify, then the device copy.
            if (_slotMemory is not null)
                return await _source.FetchExpertAsync(job.Key, _slotMemory[job.Slot], job.Token).ConfigureAwait(false);
            var bytes = await _source.FetchExpertAsync(job.Key, staging!.Memory, job.Token).ConfigureAwait(false);
            await _device.CopyToSlotAsync(_slots, job.Slot * _layout.SlotBytes, staging.Memory[..(int)_layout.SlotBytes], job.Token).ConfigureAwait(false);
            return bytes;
        }
        finally
        {
            _counters.AddFetchTiming(job.Step, job.Layer, TicksToNs(job.Issued), TicksToNs(started - job.Issued), TicksToNs(_clock.ElapsedTicks - started));
            _staging.Enqueue(staging!);
            _stagingFree.Release();
        }
    }

    private void Return(FetchJob job)
    {
        lock (_idle)
            _idle.Push(job);
    }

    private static long TicksToNs(long ticks) => (long)(ticks * (1e9 / Stopwatch.Frequency));

    public async ValueTask DisposeAsync()
    {
        await DrainAsync(abandonFailures: true).ConfigureAwait(false);
        while (_staging.TryDequeue(out var s))
            ((IDisposable)s).Dispose();
        _stagingFree.Dispose();
    }

    /// <summary>
    /// One fetch: queued to the thread pool as itself, awaited as a value task source. The worker and the compute
    /// thread each hold it until done with it, and the last to let go returns it to the pool, so a job is never
    /// reset while the other side still reads it.
    /// </summary>
    private sealed class FetchJob : IThreadPoolWorkItem, IValueTaskSource
    {
        private readonly ExpertFetches _owner;
        private readonly Action _finish;
        private ManualResetValueTaskSourceCore<bool> _done = new() { RunContinuationsAsynchronously = true };
        private ValueTask<long> _running;
        private int _holders;

        public FetchJob(ExpertFetches owner)
        {
            _owner = owner;
            _finish = Finish;
        }

        public ExpertKey Key { get; private set; }
        public int Slot { get; private set; }
        public int Step { get; private set; }
        public int Layer { get; private set; }
        public long Issued { get; private set; }
        public CancellationToken Token { get; private set; }
        public long Bytes { get; private set; }
        public Exception? Error { get; private set; }

        public bool IsCompleted => _done.GetStatus(_done.Version) != ValueTaskSourceStatus.Pending;

        public void Prepare(ExpertKey key, int slot, int step, int layer, long issued, CancellationToken token)
        {
            (Key, Slot, Step, Layer, Issued, Token) = (key, slot, step, layer, issued, token);
            (Bytes, Error) = (0, null);
            _holders = 2;
        }

        public ValueTask WhenDone() => new(this, _done.Version);

        public void Execute()
        {
            try
            {
                _running = _owner.FetchAsync(this);
            }
            catch (Exception e)
            {
                _running = ValueTask.FromException<long>(e);
            }
            if (_running.IsCompleted)
                Finish();
            else
                _running.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_finish);
        }

        private void Finish()
        {
            try
            {
                Bytes = _running.Result;
            }
            catch (Exception e)
            {
                Error = e;
            }
            _running = default;
            _done.SetResult(true);
            Release();
        }

        /// <summary>Lets go of the job; the second side to let go returns it to the pool.</summary>
        public void Release()
        {
            if (Interlocked.Decrement(ref _holders) != 0)
                return;
            _done.Reset();
            Token = default;
            _owner.Return(this);
        }

        void IValueTaskSource.GetResult(short token) => _done.GetResult(token);

        ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _done.GetStatus(token);

        void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _done.OnCompleted(continuation, state, token, flags);
    }
}
