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

put_secret() {
  curl -sf -X PUT -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"key\":\"$1\",\"value\":\"$2\",\"description\":\"bench\"}" \
    "$address/api/v1/main/namespaces/bench/secrets" >/dev/null
}
put_secret DB_PASSWORD 'bench-secret-value-0123456789'
for i in $(seq 1 19); do put_secret "KEY_$i" "value-number-$i-of-the-bench"; done
curl -sf -H "$auth" -H 'Content-Type: application/x-yaml' --data-binary @- \
  "$address/api/v1/main/flows" >/dev/null <<'YAML'
id: report
namespace: bench
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "connecting with {{ secret('DB_PASSWORD') }}"
  - id: done
    type: io.kestra.plugin.core.debug.Return
    format: "ok"
YAML
curl -sf -X POST -H "$auth" "$address/api/v1/main/executions/bench/report?wait=true" \
  | grep -q '"state":{"current":"SUCCESS"' || { echo "the flow does not succeed"; exit 1; }

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
sleep 2
idle_rss=$(rss_kib)

cat > "$work/trigger.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.path = "/api/v1/main/executions/bench/report?wait=true"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  -- The first state in the answer is the execution's (task runs come after it).
  local state = string.match(body, '"state":{"current":"(%u+)"')
  if status == 200 and state == "SUCCESS" then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local good, failed = 0, 0
  for _, t in ipairs(threads) do good = good + t:get("ok"); failed = failed + t:get("bad") end
  io.write(string.format("RESULT ok=%d bad=%d timeouts=%d socket_errors=%d seconds=%.2f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    good, failed, summary.errors.timeout,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

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

result=$(grep '^RESULT' "$work/run.txt")
field() { echo "$result" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
ok=$(field ok); seconds=$(field seconds)
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%F); wrk shares the cores"
echo "executions ($connections connections, $duration after $warmup warm-up, $workers workers): $result"
awk -v ok="$ok" -v s="$seconds" 'BEGIN { printf "executions/min: %.0f (%.0f/s)\n", ok / s * 60, ok / s }'
echo "p50 $(field p50_ms) ms, p99 $(field p99_ms) ms (trigger to SUCCESS, wait=true)"
echo "RSS idle: $((idle_rss / 1024)) MiB ($idle_rss KiB), under load (max): $((load_rss / 1024)) MiB"
echo "secret list (page of 10 of 20 secrets): $(grep 'Requests/sec' "$work/list.txt" | awk '{print $2}') requests/s," \
  "p50 $(awk '/ 50%/ {print $2}' "$work/list.txt"), p99 $(awk '/ 99%/ {print $2}' "$work/list.txt")"
