#!/usr/bin/env bash
# Whole-process benchmark: `kestrel run` of a flow whose one Parallel task
# runs 100 Log tasks, end to end (start, parse, 101 task runs, JSON out). hyperfine with warm-up
# and at least 20 runs, median reported. Never run in CI.
# Usage: bench/parallel.sh [PATH/TO/kestrel]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bin=${1:-target/release/kestrel}
bench_setup "$bin"
"$bin" run bench/inputs/parallel-100.yml --output json >/dev/null
bench_median 30 "$bin run bench/inputs/parallel-100.yml --output json"
