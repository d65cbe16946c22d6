namespace Fabric.Engine.Paging;

/// <summary>What the driver must do for one expert the pager was asked about.</summary>
public enum AssignmentKind : byte
{
    /// <summary>The expert is resident and verified in <see cref="ExpertAssignment.Slot"/>: compute with it.</summary>
    Hit = 0,
    /// <summary>The expert's fetch is already in flight into the slot: wait for <see cref="ExpertPager.FetchCompleted"/>.</summary>
    Pending = 1,
    /// <summary>The expert is absent: fetch it into the slot (after dropping <see cref="ExpertAssignment.Evicted"/>, if any).</summary>
    Fetch = 2,
    /// <summary>No slot can be freed now (all pinned or loading): release finished experts, then <see cref="ExpertPager.AssignDeferred"/>.</summary>
    Deferred = 3,
}

/// <summary>
/// One line of a plan returned by the pager. <see cref="Evicted"/> is meaningful only when <see cref="HasEviction"/>;
/// <see cref="Slot"/> is -1 for <see cref="AssignmentKind.Deferred"/>.
/// </summary>
public readonly record struct ExpertAssignment(ExpertKey Key, int Slot, AssignmentKind Kind, bool HasEviction, ExpertKey Evicted);
