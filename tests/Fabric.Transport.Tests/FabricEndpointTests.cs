namespace Fabric.Transport.Tests;

public class FabricEndpointTests
{
    [Theory]
    [InlineData("tcp://127.0.0.1:7100", "tcp", "127.0.0.1", 7100, "")]
    [InlineData("tcp://localhost:0", "tcp", "localhost", 0, "")]
    [InlineData("rdma://10.0.0.2:7471", "rdma", "10.0.0.2", 7471, "")]
    [InlineData("tcp://[::1]:9000", "tcp", "::1", 9000, "")]
    [InlineData("shm:///dev/shm/fabric", "shm", "", 0, "/dev/shm/fabric")]
    [InlineData("shm:///dev/dax0.0", "shm", "", 0, "/dev/dax0.0")]
    [InlineData("sim://pool0", "sim", "pool0", 0, "")]
    public void Parse_ValidUri_GivesParts(string uri, string scheme, string host, int port, string path)
    {
        var endpoint = FabricEndpoint.Parse(uri);
        Assert.Equal(new FabricEndpoint(scheme, host, port, path), endpoint);
        Assert.Equal(uri, endpoint.ToString());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("127.0.0.1:7100", "not an endpoint URI")]
    [InlineData("http://x:1", "unknown scheme 'http'")]
    [InlineData("tcp://127.0.0.1", "no host and port")]
    [InlineData("tcp://:7100", "no host and port")]
    [InlineData("tcp://host:70000", "invalid port")]
    [InlineData("tcp://host:-1", "invalid port")]
    [InlineData("shm://relative", "no absolute file path")]
    [InlineData("sim://", "does not name a simulated node")]
    public void Parse_BadUri_FailsWithOneSentence(string uri, string expected)
    {
        var error = Assert.Throws<EndpointException>(() => FabricEndpoint.Parse(uri));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.EndsWith(".", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }
}
