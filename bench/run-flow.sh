#!/usr/bin/env bash
# Whole-process benchmark: `kestrel run` of the Secret concept page's flow,
# hyperfine with warm-up and at least 20 runs, median reported. Never run in CI.
# Usage: bench/run-flow.sh [PATH/TO/kestrel]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bin=${1:-target/release/kestrel}
bench_setup "$bin"
export SECRET_MYPASSWORD=cGFzc3dvcmQ=
bench_median 50 "$bin run examples/hello-secret.yml --output json"
