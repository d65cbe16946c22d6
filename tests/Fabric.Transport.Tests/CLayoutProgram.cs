using System.Diagnostics;
using System.Text;

namespace Fabric.Transport.Tests;

/// <summary>
/// Compiles a C program against the installed headers that prints each expression (a size, an offset, a constant),
/// and compares what it prints with the C# side: how the native bindings prove their layouts.
/// </summary>
internal static class CLayoutProgram
{
    /// <summary>
    /// Fails, listing every mismatch, unless each C expression of <paramref name="checks"/> equals its C# value.
    /// <paramref name="includes"/> is the program's #include lines; <paramref name="requiredHeaders"/> must exist
    /// (installed by the Debian packages <paramref name="packages"/>).
    /// </summary>
    public static void AssertAllMatch((string C, long CSharp)[] checks, string includes, string[] requiredHeaders, string packages)
    {
        var install = $"install them with: apt-get install {packages} (./fabric test does this)";
        var missing = requiredHeaders.Where(h => !File.Exists(h)).ToList();
        Assert.True(missing.Count == 0, $"The headers {string.Join(", ", missing)} are missing; {install}.");
        var printed = CompileAndRun(checks.Select(c => c.C).ToArray(), includes, install);
        var wrong = checks.Zip(printed)
            .Where(pair => pair.First.CSharp != pair.Second)
            .Select(pair => $"{pair.First.C}: C says {pair.Second}, C# says {pair.First.CSharp}")
            .ToList();
        Assert.True(wrong.Count == 0, "The C# layout differs from the installed headers:\n" + string.Join("\n", wrong));
    }

    /// <summary>Prints each C expression as a number, one a line, with the system compiler and headers.</summary>
    private static long[] CompileAndRun(string[] expressions, string includes, string install)
    {
        var directory = Directory.CreateTempSubdirectory("fabric-c-layout-");
        try
        {
            var source = new StringBuilder();
            source.AppendLine("#define _GNU_SOURCE");
            source.AppendLine(includes);
            source.AppendLine("#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\nint main(void) {");
            foreach (var expression in expressions)
                source.AppendLine($"    printf(\"%lld\\n\", (long long)({expression}));");
            source.AppendLine("    return 0;\n}");
            var c = Path.Combine(directory.FullName, "layout.c");
            var program = Path.Combine(directory.FullName, "layout");
            File.WriteAllText(c, source.ToString());

            try
            {
                var compileOutput = Run("cc", ["-o", program, c], out var compileCode);
                Assert.True(compileCode == 0, $"Compiling the layout program against the installed headers failed:\n{compileOutput}");
            }
            catch (System.ComponentModel.Win32Exception)
            {
                Assert.Fail($"There is no C compiler (cc) to check the struct layouts; {install}.");
            }

            var output = Run(program, [], out var runCode);
            Assert.True(runCode == 0, $"The layout program failed: {output}");
            var numbers = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
            Assert.Equal(expressions.Length, numbers.Length);
            return numbers;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static string Run(string file, string[] arguments, out int exitCode)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        exitCode = process.ExitCode;
        return stdout + stderr.Result;
    }
}
