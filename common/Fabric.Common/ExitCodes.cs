namespace Fabric.Common;

/// <summary>The exit codes every Fabric program uses.</summary>
public static class ExitCodes
{
    /// <summary>The command did what it was asked.</summary>
    public const int Success = 0;

    /// <summary>The command ran but some of what it checked failed (a test, a benchmark step).</summary>
    public const int Failure = 1;

    /// <summary>A user error: bad input, an unreachable endpoint, a refused token.</summary>
    public const int UserError = 2;

    /// <summary>A failure that is Fabric's own fault; the message still fits one line.</summary>
    public const int InternalError = 70;

    /// <summary>The command was cancelled (Ctrl-C), as a shell reports SIGINT.</summary>
    public const int Cancelled = 130;
}
