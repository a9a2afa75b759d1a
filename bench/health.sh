#!/usr/bin/env bash
# /health with large secrets stored (issue 9 item 6). Never run in CI.
#
# Stores COUNT secrets of SIZE bytes each with `kestrel secrets set`, starts `kestrel server`
# on 127.0.0.1, then times the unauthenticated `GET /health` with hyperfine (curl, no shell,
# 5 warm-ups, RUNS runs): curl's own start is part of each figure. Target: median under 20 ms
# with 40 secrets of 60 KiB. /health reads no secret value, so the figure does not grow with
# what is stored.
#
# Usage: bench/health.sh [PATH/TO/kestrel]    COUNT=40 SIZE=61440 RUNS=200
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
target=${CARGO_TARGET_DIR:-target}
bin=${1:-$target/release/kestrel}
count=${COUNT:-40}
size=${SIZE:-61440}
runs=${RUNS:-200}

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
[ -x "$bin" ] || cargo build --release -p kestrel

work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export HOME=$work KESTREL_DATA_DIR=$work/data XDG_CONFIG_HOME=$work/config
unset KESTREL_MASTER_KEY KESTREL_MASTER_KEY_FILE
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F); $bin"

value=$(head -c "$size" /dev/zero | tr '\0' 'v')
for i in $(seq 1 "$count"); do
  printf %s "$value" | "$bin" secrets set bench "BIG_$i" 2>/dev/null
done
echo "stored: $count secrets of $size bytes"

bench_start_server "$bin" "$work/server.log"
curl -sf "$address/health" | grep -q '"status":"UP"' || { echo "/health is not UP"; exit 1; }

hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/health.json" "curl -sf $address/health"
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print('GET /health: median %.2f ms, max %.2f ms' % (r['median']*1000, r['max']*1000))" "$work/health.json"
echo "server RSS after: $(awk '/VmRSS/ {print $2}' "/proc/$server/status") KiB"
