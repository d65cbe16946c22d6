#!/usr/bin/env bash
# Fuzzes one of Fabric's parsers with AFL++ through SharpFuzz.
#   tests/Fabric.Fuzz/fuzz.sh TARGET [SECONDS]      TARGET: frame | catalog | safetensors (default 600 s)
# Installs afl++ (Debian, as root) and the sharpfuzz tool when missing, publishes Fabric.Fuzz, instruments the
# assemblies whose parsers it drives, and runs afl-fuzz from the committed seed corpus. Findings land in
# $FABRIC_FUZZ_OUT/TARGET (default /tmp/fabric-fuzz/TARGET); the line printed at the end gives executions and crashes.
set -euo pipefail
target=${1:?usage: fuzz.sh frame|catalog|safetensors [SECONDS]}
seconds=${2:-600}
here=$(cd "$(dirname "$0")" && pwd)
out=${FABRIC_FUZZ_OUT:-/tmp/fabric-fuzz}/$target
[ -d "$here/corpus/$target" ] || { echo "fuzz.sh: there is no target named '$target' (frame, catalog, safetensors)." >&2; exit 2; }

command -v afl-fuzz >/dev/null || { apt-get update -qq && apt-get install -y -qq afl++ >/dev/null; }
export PATH="$PATH:$HOME/.dotnet/tools"
command -v sharpfuzz >/dev/null || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0 >/dev/null

rm -rf "$out" && mkdir -p "$out"
dotnet publish "$here/Fabric.Fuzz.csproj" -c Release -o "$out/bin" -nologo -v quiet -clp:NoSummary
for assembly in Fabric.Transport.dll Fabric.Model.dll Fabric.Pool.Protocol.dll; do
  sharpfuzz "$out/bin/$assembly" >/dev/null
done

# dotnet itself is not instrumented (the assemblies are): AFL_SKIP_BIN_CHECK.
AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  timeout $((seconds + 60)) afl-fuzz -V "$seconds" -i "$here/corpus/$target" -o "$out/findings" -t 5000 -m none \
  -- dotnet "$out/bin/Fabric.Fuzz.dll" "$target" >"$out/afl.log" 2>&1 || true

stats="$out/findings/default/fuzzer_stats"
[ -f "$stats" ] || { echo "fuzz.sh: afl-fuzz did not start; see $out/afl.log" >&2; tail -20 "$out/afl.log" >&2; exit 1; }
execs=$(awk -F' *: *' '$1=="execs_done"{print $2}' "$stats")
crashes=$(awk -F' *: *' '$1=="saved_crashes"||$1=="unique_crashes"{print $2}' "$stats" | head -1)
hangs=$(awk -F' *: *' '$1=="saved_hangs"||$1=="unique_hangs"{print $2}' "$stats" | head -1)
echo "$target: $execs executions, $crashes crash(es), $hangs hang(s) in $seconds s; findings in $out/findings/default"
