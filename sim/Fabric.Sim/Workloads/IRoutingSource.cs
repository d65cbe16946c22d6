namespace Fabric.Sim.Workloads;

/// <summary>
/// The experts each sequence of a batch routes to, one (step, layer) at a time, in run order. Each engine owns one
/// source (seeded per engine); <see cref="Next"/> is called exactly once per layer visit.
/// </summary>
public interface IRoutingSource
{
    /// <summary>The most rows (token positions) any visit has; buffers are sized rows × top-k.</summary>
    int MaxRows { get; }

    /// <summary>
    /// Fills <paramref name="experts"/> with rows of top-k expert ids (one row per token position computed in this
    /// visit) and returns the number of ids written.
    /// </summary>
    int Next(int step, int layer, Span<int> experts);

    /// <summary>The recorded compute time of this visit in ns, or -1 when the roofline should decide.</summary>
    long RecordedComputeNs(int step, int layer);

    /// <summary>
    /// The recorded time that the step of the last visit <see cref="Next"/> returned spent outside its layer visits (LM
    /// head, sampling), in ns, added after its last layer; 0 when nothing was recorded (the roofline puts the LM head in
    /// the last layer).
    /// </summary>
    long RecordedOutsideNs(int step);

    /// <summary>
    /// The experts the recording engine's predictor chose for the next layer during the visit <see cref="Next"/> last
    /// returned, written to <paramref name="experts"/>; their count, or -1 when the source records no predictions.
    /// </summary>
    int RecordedPrediction(Span<int> experts) => -1;
}
