#!/usr/bin/env bash
# Whole-process benchmark (spec: benchmarks.md): `kestrel run` of the Secret concept page's flow,
# hyperfine with warm-up and at least 20 runs, median reported. Never run in CI.
# Usage: bench/run-flow.sh [PATH/TO/kestrel]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/kestrel}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
[ -x "$bin" ] || cargo build --release -p kestrel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KESTREL_DATA_DIR=$work/data XDG_CONFIG_HOME=$work/config
export SECRET_MYPASSWORD=cGFzc3dvcmQ=
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%F)"
hyperfine --warmup 5 --runs 50 --export-json "$work/run.json" -N \
  "$bin run examples/hello-secret.yml --output json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print('median %.2f ms' % (r['median']*1000))" "$work/run.json"
