# Shared steps of the whole-process benchmarks (bench/parallel.sh, bench/run-flow.sh,
# bench/server.sh, bench/nodes.sh, bench/health.sh): sourced from the repository root, never run on its own.
# Never run in CI.

# bench_setup BIN: installs hyperfine when missing, builds kestrel when BIN is not there, points
# kestrel's data and config at a scratch directory $work (removed on exit), prints the machine.
bench_setup() {
  command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
  [ -x "$1" ] || cargo build --release -p kestrel
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  export KESTREL_DATA_DIR=$work/data XDG_CONFIG_HOME=$work/config
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%F)"
}

# bench_median RUNS COMMAND: times COMMAND with hyperfine (5 warm-ups, then RUNS runs, no shell)
# and prints its median.
bench_median() {
  hyperfine --warmup 5 --runs "$1" --export-json "$work/run.json" -N "$2"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print('median %.2f ms' % (r['median']*1000))" "$work/run.json"
}

# bench_start_server BIN LOG [ARGS...]: starts `BIN ARGS... server $server_args` on a free port
# of 127.0.0.1 in the background, its stderr in LOG, and waits until it listens (10 s at most); sets $server
# (its pid, for the caller's cleanup) and $address.
bench_start_server() {
  local bin=$1 log=$2
  shift 2
  # shellcheck disable=SC2086 # server_args is a list of words
  "$bin" "$@" server --bind 127.0.0.1:0 ${server_args:-} 2>"$log" &
  server=$!
  for _ in $(seq 1 100); do
    grep -q 'listening on' "$log" && break
    sleep 0.1
  done
  address=$(grep -o 'http://[0-9.:]*' "$log" | head -1)
  [ -n "$address" ] || { cat "$log"; exit 1; }
}

# bench_report_flow: stores the secrets and the 2-task flow (Log of a store secret, then
# Return) the server benchmarks trigger, through the API at $address with $auth, and checks it
# succeeds once.
bench_report_flow() {
  bench_put_secret DB_PASSWORD 'bench-secret-value-0123456789'
  for i in $(seq 1 19); do bench_put_secret "KEY_$i" "value-number-$i-of-the-bench"; done
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
}

# bench_put_secret KEY VALUE: sets a secret of namespace `bench` through the API.
bench_put_secret() {
  curl -sf -X PUT -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"key\":\"$1\",\"value\":\"$2\",\"description\":\"bench\"}" \
    "$address/api/v1/main/namespaces/bench/secrets" >/dev/null
}

# bench_trigger_script FILE: writes the wrk script that triggers the flow with ?wait=true as
# the API token $token, counts 200s holding a SUCCESS execution, and prints a RESULT line.
bench_trigger_script() {
  cat > "$1" <<LUA
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
}

# bench_print_result RUN_TXT SETUP: prints the machine, then executions per minute and p50/p99
# from the RESULT line of a wrk run of the trigger script (SETUP describes the run). Fails when
# any request failed, timed out or lost its socket: such a run's figures measure nothing.
bench_print_result() {
  local result ok seconds failures
  result=$(grep '^RESULT' "$1")
  field() { echo "$result" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
  ok=$(field ok)
  seconds=$(field seconds)
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%F); wrk shares the cores"
  echo "executions ($2): $result"
  awk -v ok="$ok" -v s="$seconds" 'BEGIN { printf "executions/min: %.0f (%.0f/s)\n", ok / s * 60, ok / s }'
  echo "p50 $(field p50_ms) ms, p99 $(field p99_ms) ms (trigger to SUCCESS, wait=true)"
  failures=$(($(field bad) + $(field timeouts) + $(field socket_errors)))
  [ "$failures" -eq 0 ] || { echo "FAILED: $failures requests failed, timed out or lost their socket" >&2; return 1; }
}
