# Shared steps of the whole-process benchmarks (bench/parallel.sh, bench/run-flow.sh,
# bench/server.sh, bench/health.sh): sourced from the repository root, never run on its own.
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

# bench_start_server BIN LOG [ARGS...]: starts `BIN ARGS... server` on a free port of 127.0.0.1
# in the background, its stderr in LOG, and waits until it listens (10 s at most); sets $server
# (its pid, for the caller's cleanup) and $address.
bench_start_server() {
  local bin=$1 log=$2
  shift 2
  "$bin" "$@" server --bind 127.0.0.1:0 2>"$log" &
  server=$!
  for _ in $(seq 1 100); do
    grep -q 'listening on' "$log" && break
    sleep 0.1
  done
  address=$(grep -o 'http://[0-9.:]*' "$log" | head -1)
  [ -n "$address" ] || { cat "$log"; exit 1; }
}
