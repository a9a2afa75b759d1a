#!/usr/bin/env bash
# Whole-process benchmark (issue 9, item 8: the engine's cost is linear in tasks and
# iterations): `kestrel run` of a generated flow of N Log tasks, and of one ForEach over N
# values, end to end (start, parse, N task runs, JSON out). hyperfine with warm-up, median
# reported. Target: under 10 s each at N = 100,000. Never run in CI.
# Usage: bench/many-tasks.sh [PATH/TO/kestrel] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bin=${1:-target/release/kestrel}
n=${2:-100000}
bench_setup "$bin"

# N Log tasks, one after the other.
python3 - "$n" >"$work/tasks.yml" <<'PY'
import sys
n = int(sys.argv[1])
print("id: many_tasks\nnamespace: bench\ntasks:")
for i in range(n):
    print(f"  - id: t{i}\n    type: io.kestra.plugin.core.log.Log\n    message: \"task {i}\"")
PY

# One ForEach over N values, one Log task per iteration.
python3 - "$n" >"$work/for-each.yml" <<'PY'
import sys
n = int(sys.argv[1])
values = ", ".join(f'"v{i}"' for i in range(n))
print("id: many_values\nnamespace: bench\ntasks:")
print(f"  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [{values}]")
print("    tasks:\n      - id: log\n        type: io.kestra.plugin.core.log.Log")
print("        message: \"{{ taskrun.value }}\"")
PY

for flow in tasks for-each; do
  "$bin" run "$work/$flow.yml" --output json >/dev/null
  hyperfine --warmup 1 --runs 3 --export-json "$work/$flow.json" -N \
    "$bin run $work/$flow.yml --output json"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print('%s, N=%s: median %.2f s' % (sys.argv[2], sys.argv[3], r['median']))" \
    "$work/$flow.json" "$flow" "$n"
done
