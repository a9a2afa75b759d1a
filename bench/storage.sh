#!/usr/bin/env bash
# Whole-process benchmark (issue 12: writing and reading back a 100 MiB output file through
# internal storage): `kestrel run` of a flow whose first Commands task writes an N MiB file
# declared in `outputFiles` (stored into the internal storage), and whose second task gets it
# back through `inputFiles` by its kestra:// URI and checks its size; the execution's files are
# masked when it ends and removed with the run. Baseline: the same two tasks passing nothing
# (the file written and counted in one working directory), so the difference is the storage's
# share. hyperfine with warm-up, median reported. Never run in CI.
# Usage: bench/storage.sh [PATH/TO/kestrel] [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bin=${1:-target/release/kestrel}
mib=${2:-100}
bench_setup "$bin"

cat >"$work/through-storage.yml" <<YAML
id: through_storage
namespace: bench
tasks:
  - id: write
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["big.bin"]
    commands:
      - yes 0123456789abcdef | head -c ${mib}M > big.bin
  - id: read
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      big.bin: "{{ outputs.write.outputFiles['big.bin'] }}"
    commands:
      - test "\$(wc -c < big.bin)" -eq $((mib * 1024 * 1024))
YAML

cat >"$work/in-place.yml" <<YAML
id: in_place
namespace: bench
tasks:
  - id: write
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - yes 0123456789abcdef | head -c ${mib}M > big.bin
      - test "\$(wc -c < big.bin)" -eq $((mib * 1024 * 1024))
  - id: read
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - "true"
YAML

for flow in through-storage in-place; do
  "$bin" run "$work/$flow.yml" >/dev/null
  echo "kestrel run, a ${mib} MiB file, $flow:"
  bench_median 10 "$bin run $work/$flow.yml"
done
