#!/usr/bin/env bash
# The installed binary: its size (release profile: thin LTO, one codegen unit, stripped) and
# how long it takes to start (`kestrel --version`, and `kestrel run` of the Secret concept
# page's flow), hyperfine medians. Never run in CI.
# Usage: bench/binary.sh [PATH/TO/kestrel]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bin=${1:-target/release/kestrel}
bench_setup "$bin"
bytes=$(stat -c %s "$bin")
echo "binary: $bytes bytes ($((bytes / 1024 / 1024)) MiB), $(file -b "$bin" | cut -d, -f1-2), $(file -b "$bin" | grep -o 'stripped\|not stripped')"
echo "start, kestrel --version:"
bench_median 100 "$bin --version"
echo "start to end, kestrel run examples/hello-secret.yml (secret from the environment):"
export SECRET_MYPASSWORD=cGFzc3dvcmQ=
bench_median 50 "$bin run examples/hello-secret.yml"
