using Fabric.Transport;

return await ConsoleErrors.RunAsync("fabric-pool", () =>
{
    Console.Error.WriteLine("fabric-pool: no commands yet.");
    return Task.FromResult(ConsoleErrors.UserError);
});
