#!/usr/bin/env bash
# Backend calls made by many concurrent executions of one flow reading one Vault secret.
# Never run in CI.
#
# An OpenBao dev server on 127.0.0.1 behind a small counting proxy (python3: it forwards every
# request and counts the GETs of each path), and a `kestrel server` (release build) whose
# secrets live there (secret.type: vault, cache TTL 60 s). The flow, in namespace bench.team, logs secret('KEY'), held by the parent
# namespace bench, so each resolution asks bench.team (a miss) then bench (the value). N
# executions are submitted at once (CONCURRENCY requests in flight); once all have ended, the
# proxy says how many reads of each path OpenBao served. Target: one per TTL.
#
# Usage: bench/backend-calls.sh [PATH/TO/kestrel]   N=1000 CONCURRENCY=100
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
target=${CARGO_TARGET_DIR:-target}
bin=${1:-$target/release/kestrel}
n=${N:-1000}
concurrency=${CONCURRENCY:-100}
[ -x "$bin" ] || cargo build --release -p kestrel
./scripts/services/openbao-install >/dev/null

work=$(mktemp -d)
server=
bao=
proxy=
cleanup() {
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ -n "$proxy" ] && kill "$proxy" 2>/dev/null && wait "$proxy" 2>/dev/null || true
  [ -n "$bao" ] && kill "$bao" 2>/dev/null && wait "$bao" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export HOME=$work KESTREL_DATA_DIR=$work/data XDG_CONFIG_HOME=$work/config
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%F)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
proxy_port=$(free_port)
vault=http://127.0.0.1:$port
root=bench-root-token
bao server -dev -dev-root-token-id=$root -dev-listen-address=127.0.0.1:$port >"$work/bao.log" 2>&1 &
bao=$!
for _ in $(seq 100); do curl -fs "$vault/v1/sys/health" >/dev/null && break; sleep 0.1; done
cat >"$work/proxy.py" <<'PY'
import collections, http.server, sys, urllib.request, json
upstream, counts = sys.argv[2], collections.Counter()
class Proxy(http.server.BaseHTTPRequestHandler):
    def relay(self):
        if self.path == "/__counts":
            body = json.dumps(counts).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        if self.command == "GET": counts[self.path.split("?")[0]] += 1
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        request = urllib.request.Request(upstream + self.path, data=data, method=self.command,
            headers={k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")})
        try: answer = urllib.request.urlopen(request)
        except urllib.error.HTTPError as error: answer = error
        body = answer.read()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = do_LIST = relay
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Proxy).serve_forever()
PY
python3 "$work/proxy.py" "$proxy_port" "$vault" &
proxy=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$proxy_port/__counts" >/dev/null && break; sleep 0.1; done

cat >"$work/kestrel.yml" <<YAML
secret:
  type: vault
  vault: {address: "http://127.0.0.1:$proxy_port", token: "\${BENCH_VAULT_TOKEN}", prefix: bench}
  cache: {ttl: 60s}
YAML
export KESTREL_CONFIG=$work/kestrel.yml BENCH_VAULT_TOKEN=$root
printf %s 'the-bench-secret-value' | "$bin" secrets set bench KEY
token=$("$bin" tokens create bench 2>/dev/null | tail -n 1)
bench_start_server "$bin" "$work/server.log"
auth="Authorization: Bearer $token"
printf 'id: reads\nnamespace: bench.team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: "{{ secret(\x27KEY\x27) }}"\n' |
  curl -fs -X POST -H "$auth" -H 'Content-Type: application/x-yaml' --data-binary @- "$address/api/v1/main/flows" >/dev/null

reads_of() { # reads_of PATH: the GETs of that KV path the proxy forwarded
  curl -fs "http://127.0.0.1:$proxy_port/__counts" |
    python3 -c "import json,sys; print(json.load(sys.stdin).get('/v1/secret/data/$1', 0))"
}
start=$(date +%s.%N)
seq "$n" | xargs -P "$concurrency" -I{} curl -fs -o /dev/null -X POST -H "$auth" "$address/api/v1/main/executions/bench.team/reads"
for _ in $(seq 600); do
  done_count=$(curl -fs -H "$auth" "$address/api/v1/main/executions/search?namespace=bench.team&flowId=reads&state=SUCCESS&size=1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
  [ "$done_count" -ge "$n" ] && break
  sleep 0.5
done
end=$(date +%s.%N)
echo "executions: $n submitted, $done_count succeeded in $(python3 -c "print(round($end - $start, 1))") s"
echo "OpenBao reads of bench/KEY (the value):       $(reads_of bench/main/bench/KEY)"
echo "OpenBao reads of bench/team/KEY (the miss):   $(reads_of bench/main/bench/team/KEY)"
