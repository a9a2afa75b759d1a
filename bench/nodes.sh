#!/usr/bin/env bash
# Several nodes on PostgreSQL. Never run in CI.
#
# One `kestrel server --no-worker` and 1, then 2, `kestrel worker` processes (release build) on
# one PostgreSQL with its default durability (synchronous_commit=on, fsync on): a throwaway
# server on 127.0.0.1 started by scripts/services/postgres-start, or the one
# KESTREL_BENCH_POSTGRES names (a URL whose user may create databases). wrk, on the same
# machine, triggers the 2-task flow of bench/server.sh (Log of a store secret, then Return)
# with `?wait=true` over 32 connections, WARMUP then DURATION, for each worker count; every
# answer must be a 200 holding a SUCCESS execution. Reported per worker count: executions per
# minute and p50/p99 from trigger to SUCCESS.
#
# Usage: bench/nodes.sh [PATH/TO/kestrel]
#   DURATION=60s WARMUP=10s CONNECTIONS=32 THREADS=2 WORKER_THREADS=<cores> NODES="1 2"
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
target=${CARGO_TARGET_DIR:-target}
bin=${1:-$target/release/kestrel}
duration=${DURATION:-60s}
warmup=${WARMUP:-10s}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
worker_threads=${WORKER_THREADS:-$(nproc)}
nodes=${NODES:-1 2}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
[ -x "$bin" ] || cargo build --release -p kestrel

work=$(mktemp -d /tmp/kestrel-bench.XXXXXX)
chmod 755 "$work"
server=
workers=()
stop_all() {
  for pid in "${workers[@]}" $server; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${workers[@]}" $server; do wait "$pid" 2>/dev/null || true; done
  workers=()
  server=
}
cleanup() {
  stop_all
  [ -z "${KESTREL_BENCH_POSTGRES:-}" ] && ./scripts/services/postgres-start --stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT
export HOME=$work KESTREL_DATA_DIR=$work/data XDG_CONFIG_HOME=$work/config
KESTREL_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export KESTREL_MASTER_KEY
pg_server=${KESTREL_BENCH_POSTGRES:-$(./scripts/services/postgres-start "$work/pg")}

for count in $nodes; do
  database="${pg_server%/*}/kestrel_bench_$count"
  psql -q "$pg_server" -c "CREATE DATABASE kestrel_bench_$count" >/dev/null
  printf 'database: %s\nworker:\n  threads: %s\n' "$database" "$worker_threads" > "$work/kestrel.yml"
  token=$("$bin" --config "$work/kestrel.yml" tokens create bench 2>/dev/null)
  auth="Authorization: Bearer $token"
  server_args=--no-worker bench_start_server "$bin" "$work/server.log" --config "$work/kestrel.yml"
  for i in $(seq 1 "$count"); do
    "$bin" --config "$work/kestrel.yml" worker 2>"$work/worker-$i.log" &
    workers+=($!)
  done
  bench_report_flow
  bench_trigger_script "$work/trigger.lua"
  wrk -t"$threads" -c"$connections" -d"$warmup" --timeout 5s -s "$work/trigger.lua" "$address" >/dev/null
  wrk -t"$threads" -c"$connections" -d"$duration" --timeout 5s -s "$work/trigger.lua" "$address" > "$work/run.txt"
  bench_print_result "$work/run.txt" "PostgreSQL, 1 server --no-worker, $count worker(s) of $worker_threads threads, $connections connections, $duration after $warmup warm-up"
  stop_all
done
