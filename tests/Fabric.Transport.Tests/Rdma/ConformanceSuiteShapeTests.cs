using System.Reflection;
using Fabric.Transport.Conformance;

namespace Fabric.Transport.Tests.Rdma;

/// <summary>
/// Backends that cannot run on every machine (rdma) skip the shared suite through [ConformanceFact]; a plain [Fact] or
/// [Theory] in the suite would run there anyway and fail for want of a device, so the suite must use only [ConformanceFact].
/// </summary>
public sealed class ConformanceSuiteShapeTests
{
    [Fact]
    public void EverySuiteTest_IsAConformanceFact()
    {
        var plain = typeof(TransportConformanceTests)
            .GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Where(m => m.GetCustomAttributes<FactAttribute>().Any(a => a is not ConformanceFactAttribute))
            .Select(m => m.Name)
            .ToList();
        Assert.True(plain.Count == 0, $"Mark these suite tests [ConformanceFact] instead of [Fact]/[Theory], so backends without their hardware skip them: {string.Join(", ", plain)}.");
        Assert.Contains(typeof(TransportConformanceTests).GetMethods(), m => m.GetCustomAttribute<ConformanceFactAttribute>() is not null);
    }
}
