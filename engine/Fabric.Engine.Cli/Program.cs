using Fabric.Transport;

return await ConsoleErrors.RunAsync("fabric-engine", () =>
{
    Console.Error.WriteLine("fabric-engine: no commands yet.");
    return Task.FromResult(ConsoleErrors.UserError);
});
