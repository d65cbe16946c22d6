using System.ComponentModel;
using System.Reflection;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Fabric.Transport.Conformance;

/// <summary>
/// A conformance test. It runs like <see cref="FactAttribute"/>, except that it is skipped, with the reason printed,
/// when the concrete backend class carries a <see cref="BackendRequirementAttribute"/> whose requirement is not met
/// on this machine (an RDMA device, a GPU). Skip reasons are decided per backend class, which a plain [Fact] cannot do
/// because the suite's methods are shared by every backend.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
[XunitTestCaseDiscoverer("Fabric.Transport.Conformance.ConformanceFactDiscoverer", "Fabric.Transport.Conformance")]
public sealed class ConformanceFactAttribute : FactAttribute;

/// <summary>Put on a backend's conformance class: when <see cref="SkipReason"/> is not null every suite test of that class is skipped with it.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = true)]
public abstract class BackendRequirementAttribute : Attribute
{
    /// <summary>Why the backend cannot run here (one sentence), or null when it can.</summary>
    public abstract string? SkipReason { get; }
}

/// <summary>Finds the backend class's requirement and emits a skipped test case when it is not met.</summary>
public sealed class ConformanceFactDiscoverer : IXunitTestCaseDiscoverer
{
    private readonly IMessageSink _diagnostics;

    public ConformanceFactDiscoverer(IMessageSink diagnostics) => _diagnostics = diagnostics;

    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        var backend = (testMethod.TestClass.Class as IReflectionTypeInfo)?.Type;
        var reason = backend?.GetCustomAttribute<BackendRequirementAttribute>(inherit: true)?.SkipReason;
        yield return reason is null
            ? new XunitTestCase(_diagnostics, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod)
            : new SkippedBackendTestCase(_diagnostics, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod, reason);
    }
}

/// <summary>A conformance test case that is skipped with a reason decided at discovery time.</summary>
public sealed class SkippedBackendTestCase : XunitTestCase
{
    private string _reason = "";

    [EditorBrowsable(EditorBrowsableState.Never)]
    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public SkippedBackendTestCase() { }

    public SkippedBackendTestCase(IMessageSink diagnostics, TestMethodDisplay display, TestMethodDisplayOptions displayOptions, ITestMethod testMethod, string reason)
        : base(diagnostics, display, displayOptions, testMethod) => _reason = reason;

    protected override string GetSkipReason(IAttributeInfo factAttribute) => _reason;

    public override void Serialize(IXunitSerializationInfo data)
    {
        base.Serialize(data);
        data.AddValue("BackendSkipReason", _reason);
    }

    public override void Deserialize(IXunitSerializationInfo data)
    {
        _reason = data.GetValue<string>("BackendSkipReason");
        base.Deserialize(data);
    }
}
