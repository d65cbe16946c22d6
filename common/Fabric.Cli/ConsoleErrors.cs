using Fabric.Common;

namespace Fabric.Cli;

/// <summary>
/// The top of every Fabric program: runs the command and turns the errors a person can cause (bad input, an
/// unreachable endpoint, a missing file) into one sentence on stderr and a non-zero exit code, never a stack trace.
/// </summary>
public static class ConsoleErrors
{
    public static async Task<int> RunAsync(string program, Func<Task<int>> command)
    {
        try
        {
            return await command().ConfigureAwait(false);
        }
        catch (FabricException e)
        {
            await Console.Error.WriteLineAsync($"{program}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.UserError;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync($"{program}: cancelled.").ConfigureAwait(false);
            return ExitCodes.Cancelled;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TimeoutException)
        {
            await Console.Error.WriteLineAsync($"{program}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.UserError;
        }
        catch (Exception e)
        {
            await Console.Error.WriteLineAsync($"{program}: internal error ({e.GetType().Name}): {e.Message}").ConfigureAwait(false);
            return ExitCodes.InternalError;
        }
    }
}
