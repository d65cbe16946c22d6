namespace Fabric.Transport;

/// <summary>
/// The top of every Fabric program: runs the command and turns the errors a person can cause (bad input, an
/// unreachable endpoint, a missing file) into one sentence on stderr and a non-zero exit code, never a stack trace.
/// </summary>
public static class ConsoleErrors
{
    /// <summary>Exit code for a user error: bad input, unreachable endpoint, refused token.</summary>
    public const int UserError = 2;

    /// <summary>Exit code for a failure that is Fabric's own fault; the message still fits one line.</summary>
    public const int InternalError = 70;

    public static async Task<int> RunAsync(string program, Func<Task<int>> command)
    {
        try
        {
            return await command().ConfigureAwait(false);
        }
        catch (FabricException e)
        {
            await Console.Error.WriteLineAsync($"{program}: {e.Message}").ConfigureAwait(false);
            return UserError;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync($"{program}: cancelled.").ConfigureAwait(false);
            return 130;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TimeoutException)
        {
            await Console.Error.WriteLineAsync($"{program}: {e.Message}").ConfigureAwait(false);
            return UserError;
        }
        catch (Exception e)
        {
            await Console.Error.WriteLineAsync($"{program}: internal error ({e.GetType().Name}): {e.Message}").ConfigureAwait(false);
            return InternalError;
        }
    }
}
