using Fabric.Common;
using Fabric.Engine.Device;
using Fabric.Engine.Gpu.Kernels;
using Fabric.Engine.Gpu.Memory;
using ILGPU.Runtime;

namespace Fabric.Engine.Gpu.Tests;

public sealed class MemoryTests
{
    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void Arena_CarvesAlignedRegions_AndRefusesPastTheBudgetNamingWhatIsNeeded(string device)
    {
        var accelerator = Accelerators.Get(device).Device.Accelerator;
        using var arena = new DeviceArena(accelerator, 4096);
        var a = arena.Allocate(100, "dense weights");
        var b = arena.Allocate(1000, "KV cache");
        Assert.Equal(100, a.Length);
        Assert.Equal(1000, b.Length);
        Assert.Equal(128 + 1024, arena.AllocatedBytes);
        Assert.True(arena.TryAllocate(arena.FreeBytes, out _));
        Assert.False(arena.TryAllocate(1, out _));
        var error = Assert.Throws<GpuUnavailableException>(() => arena.Allocate(3000, "expert slot 0"));
        Assert.Contains("expert slot 0", error.Message, StringComparison.Ordinal);
        Assert.Contains("at least", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StagingBuffer_FreedByItsOwner_IsUnregisteredFromTheDevice()
    {
        // A freed staging buffer left registered makes a later buffer at the same address fail to register on CUDA
        // (HOST_MEMORY_ALREADY_REGISTERED); the device forgets a buffer when its owner frees it.
        using var device = IlgpuDevice.Open("ilgpu-cpu", 1 << 20);
        using var slots = device.Allocate(8192, "expert slots");
        var first = new NativeBuffer(4096);
        first.Span.Fill(7);
        await device.CopyToSlotAsync(slots, 0, first.Memory);
        using var second = new NativeBuffer(4096);
        await device.CopyToSlotAsync(slots, 4096, second.Memory);
        Assert.Equal(2, device.RegisteredStagingBuffers);

        first.Dispose();

        Assert.Equal(1, device.RegisteredStagingBuffers);
        var copied = new byte[4096];
        device.Download(slots, 0, copied);
        Assert.All(copied, b => Assert.Equal(7, b));
    }

    [Fact]
    public void Arena_FreedRegionsMerge_SoTheWholeCapacityIsOneRangeAgain()
    {
        var accelerator = Accelerators.Get("ilgpu-cpu").Device.Accelerator;
        using var arena = new DeviceArena(accelerator, 1024);
        var regions = Enumerable.Range(0, 8).Select(i => arena.Allocate(128, $"r{i}")).ToArray();
        Assert.False(arena.TryAllocate(1, out _));
        foreach (int i in new[] { 1, 5, 3, 0, 7, 2, 6, 4 })
            arena.Free(regions[i]);
        Assert.Equal(0, arena.AllocatedBytes);
        Assert.True(arena.TryAllocate(1024, out var whole));
        Assert.Equal(1024, whole.Length);
    }

    [Fact]
    public void Arena_FirstFit_ReusesAFreedHole()
    {
        var accelerator = Accelerators.Get("ilgpu-cpu").Device.Accelerator;
        using var arena = new DeviceArena(accelerator, 1024);
        var a = arena.Allocate(256, "a");
        var b = arena.Allocate(256, "b");
        arena.Allocate(512, "c");
        arena.Free(b);
        var again = arena.Allocate(200, "d");
        Assert.Equal(((ILGPU.IContiguousArrayView)b).Index, ((ILGPU.IContiguousArrayView)again).Index);
        Assert.NotEqual(((ILGPU.IContiguousArrayView)a).Index, ((ILGPU.IContiguousArrayView)again).Index);
    }

    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void Arena_MoreThanTheDeviceHas_IsOneSentence(string device)
    {
        var accelerator = Accelerators.Get(device).Device.Accelerator;
        var error = Assert.Throws<GpuUnavailableException>(() => new DeviceArena(accelerator, IlgpuAccelerators.MemoryBytes(accelerator) + (1L << 30)));
        Assert.Contains("device memory budget", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void CopyQueue_StagingIntoSlots_LandsTheBytesAndComputeSeesThemAfterTheWait(string device)
    {
        var (gpu, kernels) = Accelerators.Get(device);
        var accelerator = gpu.Accelerator;
        const int slotBytes = 4 * 64;
        using var staging = PinnedStaging.Allocate(accelerator, 3 * slotBytes);
        var random = new Random(21);
        random.NextBytes(staging.Span);
        using var arena = new DeviceArena(accelerator, 1 << 20);
        var slots = Enumerable.Range(0, 3).Select(i => arena.Allocate(slotBytes, $"slot {i}")).ToArray();
        using var queue = new CopyQueue(accelerator);
        var tickets = new StreamTicket[3];
        for (int i = 0; i < 3; i++)
            tickets[i] = queue.Enqueue(staging, (2 - i) * slotBytes, slots[i]);
        Assert.Equal(3 * slotBytes, queue.BytesEnqueued);

        // The compute stream reads slot 0 as an FP32 table right after a device-side wait on its copy.
        using var compute = accelerator.CreateStream();
        queue.MakeWait(compute, tickets[0]);
        int[] ids = [0, 3];
        using var idBuffer = accelerator.Allocate1D(ids);
        using var output = accelerator.Allocate1D<float>(2 * 16);
        kernels.Embed(compute, WeightView.Of(slots[0], WeightType.F32), idBuffer.View, output.View, 2, 16);
        compute.Synchronize();
        var table = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(staging.Span.Slice(2 * slotBytes, slotBytes)).ToArray();
        Assert.Equal(table[..16].Concat(table[48..64]).ToArray(), output.GetAsArray1D());

        queue.Wait(tickets[2]);
        Assert.True(queue.IsComplete(tickets[2]));
        for (int i = 0; i < 3; i++)
        {
            var landed = new byte[slotBytes];
            slots[i].CopyToCPU(ref landed[0], slotBytes);
            Assert.Equal(staging.Span.Slice((2 - i) * slotBytes, slotBytes).ToArray(), landed);
        }
    }

    [Theory]
    [IlgpuCpuData]
    [CudaData]
    public void CopyQueue_CopyPastTheStagingEnd_IsRefused(string device)
    {
        var accelerator = Accelerators.Get(device).Device.Accelerator;
        using var staging = PinnedStaging.Allocate(accelerator, 1024);
        using var arena = new DeviceArena(accelerator, 4096);
        using var queue = new CopyQueue(accelerator);
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Enqueue(staging, 512, arena.Allocate(1024, "slot")));
    }

    [Fact]
    public void StreamFences_RingWraps_OlderTicketsStillWaitable()
    {
        var accelerator = Accelerators.Get("ilgpu-cpu").Device.Accelerator;
        using var stream = accelerator.CreateStream();
        using var fences = new StreamFences(stream, capacity: 2);
        var first = fences.Record();
        fences.Record();
        var third = fences.Record();
        Assert.Equal(first.Index, third.Index);
        fences.Wait(first);
        Assert.True(fences.IsComplete(first));
        Assert.True(fences.IsComplete(StreamTicket.None));
    }

    [CudaFact]
    public void Cuda_StagingIsPageLocked()
    {
        var accelerator = Accelerators.Get("cuda:0").Device.Accelerator;
        using var staging = PinnedStaging.Allocate(accelerator, 1 << 20);
        Assert.True(staging.IsPageLocked);
    }

    [CudaFact]
    public void Cuda_ArenaTakesNoMoreDeviceMemoryThanItsBudget_ByTheDriversFreeFigure()
    {
        using var gpu = IlgpuAccelerators.Open("cuda:0");
        const long budget = 256L << 20;
        const long granularity = 2L << 20;
        long before = gpu.FreeMemoryBytes()!.Value;
        using (var arena = new DeviceArena(gpu.Accelerator, budget))
        {
            arena.Allocate(budget / 2, "dense weights");
            while (arena.TryAllocate(1 << 20, out _)) { }
            long after = gpu.FreeMemoryBytes()!.Value;
            Assert.InRange(before - after, budget, budget + granularity);
        }
    }

    [CudaFact]
    public void Cuda_IlgpuDevice_DriverFreeMemoryDropsByTheBudgetAndNoMore()
    {
        const long budget = 512L << 20;
        var gpu = IlgpuAccelerators.Open("cuda:0");
        long before = gpu.FreeMemoryBytes()!.Value;
        using (var device = new IlgpuDevice(gpu, budget))
        {
            while (device.Memory.FreeBytes > 1 << 20)
                device.Allocate(1 << 20, "slot");
            long after = gpu.FreeMemoryBytes()!.Value;
            // The arena (budget + alignment headroom), plus the kernel modules, streams and cuBLAS workspace (≤ 64 MiB).
            Assert.InRange(before - after, budget, budget + IlgpuDevice.AlignmentHeadroomBytes + (64L << 20));
        }
    }

    [Fact]
    public void NativeStaging_FromTheEnginesBuffer_IsNotFreedByTheStaging()
    {
        var accelerator = Accelerators.Get("ilgpu-cpu").Device.Accelerator;
        using var buffer = new NativeBuffer(8192);
        using (var staging = new PinnedStaging(accelerator, buffer))
        {
            staging.Span[0] = 7;
            Assert.Equal(8192, staging.Length);
            Assert.False(staging.IsPageLocked, "the CPU accelerator locks nothing");
        }
        Assert.Equal(7, buffer.Span[0]);
    }
}
