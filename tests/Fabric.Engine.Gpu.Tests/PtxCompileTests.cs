using System.Globalization;
using System.Reflection;
using Fabric.Engine.Gpu.Kernels;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Xunit.Abstractions;

namespace Fabric.Engine.Gpu.Tests;

/// <summary>
/// Every kernel of <see cref="KernelBodies"/> and <see cref="FamilyKernelBodies"/> compiles to PTX for the GPUs Fabric targets (sm_80 A100, sm_90 H100/H200),
/// without a device: ILGPU's PTX backend runs on any machine, so a kernel that only the CUDA path would reject fails here.
/// </summary>
public sealed class PtxCompileTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> KernelsAndArchitectures()
    {
        var data = new TheoryData<string, string>();
        foreach (var kernel in KernelMethods())
        {
            data.Add(kernel.DeclaringType!.Name + "." + kernel.Name, nameof(CudaArchitecture.SM_80));
            data.Add(kernel.DeclaringType!.Name + "." + kernel.Name, nameof(CudaArchitecture.SM_90));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(KernelsAndArchitectures))]
    public void Kernel_CompilesToPtx(string kernel, string architecture)
    {
        var method = KernelMethods().Single(m => m.DeclaringType!.Name + "." + m.Name == kernel);
        var arch = architecture == nameof(CudaArchitecture.SM_80) ? CudaArchitecture.SM_80 : CudaArchitecture.SM_90;
        using var context = Context.Create(b => b.CPU().EnableAlgorithms());
        using var backend = new PTXBackend(context, arch, arch == CudaArchitecture.SM_80 ? CudaInstructionSet.ISA_80 : CudaInstructionSet.ISA_83, null!);

        var compiled = (PTXCompiledKernel)backend.Compile(EntryPoint(method), KernelSpecialization.Empty);

        Assert.Contains(".entry", compiled.PTXAssembly, StringComparison.Ordinal);
        // ILGPU 1.5 writes the newest target whose features it uses (sm_80 for an sm_90 build), which the driver JITs forward.
        var target = compiled.PTXAssembly.Split('\n').Single(l => l.StartsWith(".target sm_", StringComparison.Ordinal));
        Assert.True(int.Parse(target[".target sm_".Length..].Trim(), CultureInfo.InvariantCulture) <= (arch == CudaArchitecture.SM_80 ? 80 : 90), target);
        output.WriteLine($"{kernel} {architecture}: {target}, {compiled.PTXAssembly.Length} characters of PTX");
    }

    [Fact]
    public void KernelBodies_AreAllFound()
    {
        // The theory above enumerates kernels by reflection; this guards against the enumeration finding nothing.
        Assert.True(KernelMethods().Count() >= 20, $"Found only {KernelMethods().Count()} kernels.");
    }

    private static IEnumerable<MethodInfo> KernelMethods() =>
        new[] { typeof(KernelBodies), typeof(FamilyKernelBodies) }.SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly));

    /// <summary>Kernels whose first parameter is an index are implicitly grouped; the rest use group intrinsics.</summary>
    private static EntryPointDescription EntryPoint(MethodInfo method) =>
        method.GetParameters()[0].ParameterType == typeof(Index1D)
            ? EntryPointDescription.FromImplicitlyGroupedKernel(method)
            : EntryPointDescription.FromExplicitlyGroupedKernel(method);
}
