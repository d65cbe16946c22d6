using Fabric.Common;

namespace Fabric.Engine.Gpu.Tests;

public sealed class DeviceTests
{
    [Theory]
    [InlineData("ilgpu-cpu", AcceleratorKind.IlgpuCpu, 0)]
    [InlineData("cuda", AcceleratorKind.Cuda, 0)]
    [InlineData("CUDA:3", AcceleratorKind.Cuda, 3)]
    public void Parse_AcceptsTheDeviceForms(string text, AcceleratorKind kind, int ordinal) =>
        Assert.Equal(new AcceleratorSpec(kind, ordinal), AcceleratorSpec.Parse(text));

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    public void Parse_RefusesOtherValuesInOneSentence(string text)
    {
        var error = Assert.Throws<FabricException>(() => AcceleratorSpec.Parse(text));
        Assert.Contains($"'{text}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void List_AlwaysHasTheCpuAccelerator_AndCudaDevicesExactlyWhenPresent()
    {
        var devices = IlgpuAccelerators.List();
        Assert.Contains(devices, d => d.Spec.Kind == AcceleratorKind.IlgpuCpu && d.MemoryBytes > 0);
        Assert.Equal(Accelerators.CudaAbsence is null, devices.Any(d => d.Spec.Kind == AcceleratorKind.Cuda));
    }

    [Fact]
    public void OpenCuda_WithoutADevice_SaysSoInOneSentence_OrOpensTheDevice()
    {
        if (Accelerators.CudaAbsence is { } reason)
        {
            var error = Assert.Throws<GpuUnavailableException>(() => IlgpuAccelerators.Open("cuda"));
            Assert.StartsWith("Cannot open device cuda:0: no CUDA device", error.Message, StringComparison.Ordinal);
            Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        }
        else
        {
            using var gpu = IlgpuAccelerators.Open("cuda");
            Assert.True(gpu.IsCuda);
            Assert.NotNull(gpu.FreeMemoryBytes());
        }
    }

    [Fact]
    public void OpenCuda_PastTheLastOrdinal_IsRefused() =>
        Assert.Throws<GpuUnavailableException>(() => IlgpuAccelerators.Open("cuda:64"));
}
