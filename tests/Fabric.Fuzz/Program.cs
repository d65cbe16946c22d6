using Fabric.Fuzz;

// Fabric.Fuzz TARGET                 run under afl-fuzz (instrumented by sharpfuzz; see fuzz.sh): input on stdin/file
// Fabric.Fuzz TARGET --replay PATH   run every file under PATH (or PATH itself) through TARGET in this process
// Fabric.Fuzz --write-seeds DIR      write the seed corpus (DIR/TARGET/*)
if (args.Length == 2 && args[0] == "--write-seeds")
{
    SeedCorpus.Write(args[1]);
    return 0;
}
if (args.Length is not (1 or 3) || !FuzzTargets.All.TryGetValue(args[0], out var target) || (args.Length == 3 && args[1] != "--replay"))
{
    Console.Error.WriteLine($"usage: Fabric.Fuzz {string.Join('|', FuzzTargets.All.Keys)} [--replay PATH] | --write-seeds DIR");
    return 2;
}
if (args.Length == 3)
{
    var files = File.Exists(args[2]) ? [args[2]] : Directory.GetFiles(args[2], "*", SearchOption.AllDirectories);
    foreach (var file in files)
        target(File.ReadAllBytes(file));
    Console.WriteLine($"{files.Length} input(s) replayed through {args[0]}, no finding");
    return 0;
}
SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
{
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    target(copy.ToArray());
});
return 0;
