using Fabric.Transport;

return await ConsoleErrors.RunAsync("fabric-sim", () =>
{
    Console.Error.WriteLine("fabric-sim: no commands yet.");
    return Task.FromResult(ConsoleErrors.UserError);
});
