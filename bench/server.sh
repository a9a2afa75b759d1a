#!/usr/bin/env bash
# Server benchmark. Never run in CI.
#
# A `kestrel server` on 127.0.0.1 (release build, embedded SQLite store, synchronous=NORMAL,
# logs and audit on), authenticated with an API token (Bearer). wrk, on the same machine,
# triggers a 2-task flow (Log of a store secret, then Return) with `?wait=true` over 32
# connections, WARMUP then DURATION; every answer must be a 200 holding a SUCCESS execution
# (the others, and timeouts, count as failures). Reported: executions per minute, p50/p99 from
# trigger to the final state, the server's RSS at idle and under load (max of samples every
# 0.5 s), then the throughput of listing a namespace's secrets (20 secrets, one page of 10).
#
# Usage: bench/server.sh [PATH/TO/kestrel]
#   DURATION=60s WARMUP=10s CONNECTIONS=32 THREADS=2 LIST_DURATION=20s WORKERS=<cores>
#   e.g. a quick run: DURATION=15s WARMUP=3s LIST_DURATION=5s bench/server.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
target=${CARGO_TARGET_DIR:-target}
bin=${1:-$target/release/kestrel}
duration=${DURATION:-60s}
warmup=${WARMUP:-10s}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
list_duration=${LIST_DURATION:-20s}
workers=${WORKERS:-$(nproc)}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
[ -x "$bin" ] || cargo build --release -p kestrel

work=$(mktemp -d)
server=
sampler=
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export HOME=$work KESTREL_DATA_DIR=$work/data XDG_CONFIG_HOME=$work/config
unset KESTREL_MASTER_KEY KESTREL_MASTER_KEY_FILE
printf 'worker:\n  threads: %s\n' "$workers" > "$work/kestrel.yml"

token=$("$bin" tokens create bench 2>/dev/null)
bench_start_server "$bin" "$work/server.log" --config "$work/kestrel.yml"
auth="Authorization: Bearer $token"

bench_report_flow

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
sleep 2
idle_rss=$(rss_kib)

bench_trigger_script "$work/trigger.lua"

wrk -t"$threads" -c"$connections" -d"$warmup" --timeout 5s -s "$work/trigger.lua" "$address" >/dev/null

( max=0; while :; do r=$(rss_kib); [ "$r" -gt "$max" ] && max=$r && echo "$max" > "$work/max_rss"; sleep 0.5; done ) &
sampler=$!
wrk -t"$threads" -c"$connections" -d"$duration" --timeout 5s -s "$work/trigger.lua" "$address" > "$work/run.txt"
kill "$sampler"; sampler=
load_rss=$(cat "$work/max_rss")

cat > "$work/list.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
wrk.path = "/api/v1/main/namespaces/bench/secrets?page=1&size=10"
LUA
wrk -t"$threads" -c"$connections" -d"$list_duration" --timeout 5s --latency -s "$work/list.lua" "$address" > "$work/list.txt"

bench_print_result "$work/run.txt" "$connections connections, $duration after $warmup warm-up, $workers workers"
echo "RSS idle: $((idle_rss / 1024)) MiB ($idle_rss KiB), under load (max): $((load_rss / 1024)) MiB"
echo "secret list (page of 10 of 20 secrets): $(grep 'Requests/sec' "$work/list.txt" | awk '{print $2}') requests/s," \
  "p50 $(awk '/ 50%/ {print $2}' "$work/list.txt"), p99 $(awk '/ 99%/ {print $2}' "$work/list.txt")"
