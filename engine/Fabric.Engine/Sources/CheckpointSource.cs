using Fabric.Engine.Device;
using Fabric.Engine.Paging;
using Fabric.Model;
using Microsoft.Win32.SafeHandles;

namespace Fabric.Engine.Sources;

/// <summary>Weights read straight from a local checkpoint directory (<c>--model DIR</c>): the all-resident baseline.</summary>
public sealed class CheckpointSource : IWeightSource
{
    private readonly Checkpoint _checkpoint;
    private readonly Dictionary<string, SafeFileHandle> _handles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DenseTensorInfo> _dense;

    public CheckpointSource(string directory)
    {
        _checkpoint = Checkpoint.Open(directory);
        Config = _checkpoint.Config;
        var e = _checkpoint[0, 0];
        ExpertLayout = ExpertSlotLayout.Packed(WeightTypes.Parse(e.Gate.Dtype.SafetensorsName()), Config.HiddenSize, Config.IntermediateSize);
        _dense = _checkpoint.Dense.ToDictionary(t => t.Name, t => new DenseTensorInfo(t.Name, t.Shape, t.Dtype, t.Length), StringComparer.Ordinal);
        foreach (var file in _checkpoint.Files)
            _handles[file.Path] = File.OpenHandle(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
    }

    public ModelConfig Config { get; }

    public ExpertSlotLayout ExpertLayout { get; }

    public IReadOnlyDictionary<string, DenseTensorInfo> DenseTensors => _dense;

    public string TransportName => "local";

    public long Retries => 0;

    public long CorruptBlocks => 0;

    public ValueTask ReadDenseAsync(string name, Memory<byte> destination, CancellationToken cancellationToken)
    {
        var t = _checkpoint.FindDense(name) ?? throw new CheckpointException($"Checkpoint {_checkpoint.Directory} has no tensor {name}.");
        ReadExactly(t, destination.Span[..checked((int)t.Length)]);
        return ValueTask.CompletedTask;
    }

    public ValueTask<long> FetchExpertAsync(ExpertKey key, Memory<byte> staging, CancellationToken cancellationToken)
    {
        var e = _checkpoint[key.Layer, key.Expert];
        var span = staging.Span;
        ReadExactly(e.Gate, span.Slice((int)ExpertLayout.W1Offset, (int)e.Gate.Length));
        ReadExactly(e.Up, span.Slice((int)ExpertLayout.W3Offset, (int)e.Up.Length));
        ReadExactly(e.Down, span.Slice((int)ExpertLayout.W2Offset, (int)e.Down.Length));
        return ValueTask.FromResult(e.Bytes);
    }

    private void ReadExactly(TensorEntry t, Span<byte> destination)
    {
        var handle = _handles[t.File];
        var done = 0;
        while (done < destination.Length)
        {
            var n = RandomAccess.Read(handle, destination[done..], t.Offset + done);
            if (n <= 0)
                throw new CheckpointException($"{t.File} ended while reading tensor {t.Name}; the file is truncated.");
            done += n;
        }
    }

    public ValueTask DisposeAsync()
    {
        foreach (var h in _handles.Values)
            h.Dispose();
        return ValueTask.CompletedTask;
    }
}
