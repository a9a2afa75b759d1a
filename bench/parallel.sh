#!/usr/bin/env bash
# Whole-process benchmark (spec: benchmarks.md): `kestrel run` of a flow whose one Parallel task
# runs 100 Log tasks, end to end (start, parse, 101 task runs, JSON out). hyperfine with warm-up
# and at least 20 runs, median reported. Never run in CI.
# Usage: bench/parallel.sh [PATH/TO/kestrel]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/kestrel}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
[ -x "$bin" ] || cargo build --release -p kestrel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KESTREL_DATA_DIR=$work/data XDG_CONFIG_HOME=$work/config
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%F)"
"$bin" run bench/inputs/parallel-100.yml --output json >/dev/null
hyperfine --warmup 5 --runs 30 --export-json "$work/run.json" -N \
  "$bin run bench/inputs/parallel-100.yml --output json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print('median %.2f ms' % (r['median']*1000))" "$work/run.json"
